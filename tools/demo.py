"""mmcompact's quick start (the main job): the whole story on real mmdet machinery, on CPU.

  1. synthetic COCO-format detection data              (tools/make_synthetic.py)
  2. a RetinaNet-ResNet18 teacher, trained briefly      (tools/train.py)
  3. a re-parameterized GhostNetV3-0.5x RetinaNet student, distilled from it (PKD + head KD, EMA)
  4. COCO mAP of teacher, student and folded student    (tools/test.py)
  5. fold the student, check it                         (tools/fold.py)
  6. params / FLOPs / latency table, plots under the work dir

    python tools/demo.py [--work-dir work_dirs/demo] [--iters 200] [--large]

About 7 minutes on 2 CPU cores; --large makes everything bigger for a GPU. Accuracy after a few hundred
iterations on synthetic shapes is low in absolute terms: the point is the pipeline, end to end.
"""
import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CONFIGS = os.path.join(ROOT, 'configs', 'demo')
TEACHER = os.path.join(CONFIGS, 'teacher_retinanet_r18_fpn_synthetic.py')
STUDENT = os.path.join(CONFIGS, 'student_retinanet_ghostnetv3-0.5x_synthetic.py')
DISTILL = os.path.join(CONFIGS, 'student_retinanet_ghostnetv3-0.5x_kd_synthetic.py')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--work-dir', default='work_dirs/demo')
    parser.add_argument('--iters', type=int, default=200, help='training iterations of teacher and student')
    parser.add_argument('--num-train', type=int, default=240)
    parser.add_argument('--num-val', type=int, default=60)
    parser.add_argument('--large', action='store_true',
                        help='GPU-sized run: 10x the data, 10x the iterations')
    return parser.parse_args(argv)


def print_study_results(format_table) -> None:
    """The measured recipe study (results/recipe_study.json), printed beside this run and labelled as such:
    a CPU-sized demo is too short to show what the recipe is worth."""
    import json
    path = os.path.join(ROOT, 'results', 'recipe_study.json')
    if not os.path.isfile(path):
        return
    with open(path) as f:
        study = json.load(f)
    rows = [['variant (same deploy network)', study['metric'] + ' mean', '95% CI', 'seeds']]
    for name, v in study['variants'].items():
        rows.append([name, f"{v['mean']:.2f}", f"+-{v['ci95']:.2f}", str(len(v['seeds']))])
    rows.append(['teacher', f"{study['teacher']:.2f}", '', '1'])
    print(f"\nNot this run: the measured recipe study ({study['title']}; results/recipe_study.md):")
    print(format_table(rows, total_row=False))


def step(index: int, total: int, message: str) -> None:
    print(f'\n[{index}/{total}] {message}', flush=True)


def cfg_options(options: dict) -> list:
    return ['--cfg-options'] + [f'{k}={v}' for k, v in options.items()]


def save_plots(out_dir: str, teacher_log: list, student_log: list, table: list) -> list:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    paths = []
    fig, ax = plt.subplots(figsize=(7, 4))
    for log, key, label in ((teacher_log, 'loss', 'teacher: loss'), (student_log, 'loss', 'student: total loss'),
                            (student_log, 'loss_cls', 'student: loss_cls (task)'),
                            (student_log, 'loss_pkd_fpn', 'student: loss_pkd_fpn'),
                            (student_log, 'loss_kd_cls', 'student: loss_kd_cls')):
        points = [(r['step'], r[key]) for r in log if key in r and 'step' in r]
        if points:
            ax.plot(*zip(*points), label=label)
    ax.set_xlabel('iteration')
    ax.set_ylabel('loss')
    ax.set_title('Training losses (teacher from scratch, student distilled)')
    ax.legend(fontsize=8)
    fig.tight_layout()
    paths.append(os.path.join(out_dir, 'loss_curves.png'))
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)

    names = [row['name'] for row in table]
    fig, ax = plt.subplots(figsize=(7, 4))
    xs = range(len(names))
    ax.bar([x - 0.2 for x in xs], [row['mAP'] for row in table], width=0.4, label='bbox mAP')
    ax.bar([x + 0.2 for x in xs], [row['mAP50'] for row in table], width=0.4, label='bbox mAP@0.5')
    ax.set_xticks(list(xs), names, fontsize=8)
    ax.set_title('COCO evaluation on the synthetic val split')
    ax.legend()
    fig.tight_layout()
    paths.append(os.path.join(out_dir, 'map.png'))
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 4))
    for row in table:
        ax.scatter(row['macs'] / 1e6, row['mAP'], s=60)
        ax.annotate(row['name'], (row['macs'] / 1e6, row['mAP']), textcoords='offset points', xytext=(5, 5),
                    fontsize=8)
    ax.set_xlabel('MACs (M, at the demo input size)')
    ax.set_ylabel('bbox mAP')
    ax.set_title('Accuracy vs FLOPs')
    fig.tight_layout()
    paths.append(os.path.join(out_dir, 'map_vs_flops.png'))
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)
    return paths


def main(argv=None) -> int:
    args = parse_args(argv)
    start = time.time()
    import torch

    import mmcompact  # noqa: F401
    from mmcompact.analysis import count_complexity, format_table, measure_latency, read_scalars
    from mmcompact.apis import coco_data_options, evaluate, run_tool, schedule_overrides
    from mmcompact.deploy import deploy_config
    from mmcompact.utils import build_model, load_config
    from mmcompact.checkpoint import safe_load

    work_dir = os.path.abspath(args.work_dir)
    iters, num_train, num_val = args.iters, args.num_train, args.num_val
    if args.large:
        iters, num_train, num_val = iters * 10, num_train * 10, num_val * 10
    data_dir = os.path.join(work_dir, 'data')
    options = {**coco_data_options(data_dir), **schedule_overrides(iters)}
    total = 6

    step(1, total, f'synthetic COCO-format data: {num_train} train + {num_val} val images -> {data_dir}')
    if os.path.isfile(os.path.join(data_dir, 'annotations', 'instances_val.json')):
        print('(already there: reused; delete the folder to regenerate)')
    elif run_tool(f'{HERE}/make_synthetic.py', ['det', data_dir, '--num-train', num_train, '--num-val', num_val,
                                                 '--classes', 3, '--min-size', 160, '--max-size', 256]):
        return 1

    teacher_dir = os.path.join(work_dir, 'teacher')
    teacher_ckpt = os.path.join(teacher_dir, f'iter_{iters}.pth')
    step(2, total, f'train the teacher (RetinaNet-ResNet18-FPN, {iters} iterations) -> {teacher_dir}')
    if run_tool(f'{HERE}/train.py', [TEACHER, '--work-dir', teacher_dir] + cfg_options(options)):
        return 1

    student_dir = os.path.join(work_dir, 'student')
    step(3, total, f'distill the re-parameterized GhostNetV3-0.5x student ({iters} iterations) -> {student_dir}')
    if run_tool(f'{HERE}/train.py', [DISTILL, '--work-dir', student_dir] + cfg_options(
            {**options, 'model.teacher_checkpoint': teacher_ckpt})):
        return 1

    step(4, total, 'fold the exported student and check it (tools/fold.py)')
    folded = os.path.join(student_dir, 'student_folded.pth')
    if run_tool(f'{HERE}/fold.py', [STUDENT, os.path.join(student_dir, 'student.pth'), folded, '--shape', 160,
                                     160, '--force'] + cfg_options(coco_data_options(data_dir))):
        return 1

    step(5, total, 'COCO evaluation of teacher, student (training form) and student (deploy form)')
    teacher_cfg = load_config(TEACHER, coco_data_options(data_dir))
    student_cfg = load_config(STUDENT, coco_data_options(data_dir))
    deploy_cfg, _ = deploy_config(student_cfg)
    entries = [('teacher', teacher_cfg, teacher_ckpt),
               ('student', student_cfg, os.path.join(student_dir, 'student.pth')),
               ('student deploy', deploy_cfg, folded)]
    table = []
    for name, cfg, ckpt in entries:
        metrics = evaluate(cfg, ckpt, os.path.join(work_dir, 'eval', name.replace(' ', '_')))
        if 'coco/bbox_mAP' not in metrics:  # CocoMetric reports nothing when there is no detection at all
            print(f'{name}: no detection above the score threshold: mAP 0')
        model = build_model(cfg)
        model.load_state_dict(safe_load(ckpt)['state_dict'], strict=True)
        complexity = count_complexity(model, (1, 3, 160, 160), parts=[])
        table.append(dict(name=name, model=model.eval(), params=complexity.params, macs=complexity.macs,
                          mAP=metrics.get('coco/bbox_mAP', 0.0), mAP50=metrics.get('coco/bbox_mAP_50', 0.0)))
    latency = measure_latency({row['name']: row['model'] for row in table}, 1, (160, 160), warmup=2, iters=10)

    step(6, total, 'summary')
    rows = [['model', 'params', 'MACs @160x160', 'latency bs1 (CPU)', 'bbox mAP', 'mAP@0.5']]
    for row in table:
        rows.append([row['name'], f"{row['params'] / 1e6:.2f}M", f"{row['macs'] / 1e6:.1f}M",
                     f"{latency[row['name']]['ms']:.1f} ms", f"{row['mAP']:.3f}", f"{row['mAP50']:.3f}"])
    print(format_table(rows, total_row=False))
    student_row, deploy_row = table[1], table[2]
    print(f"\nfolding kept the student's mAP ({student_row['mAP']:.3f} -> {deploy_row['mAP']:.3f}) and cut its "
          f"params by {1 - deploy_row['params'] / student_row['params']:.0%} and MACs by "
          f"{1 - deploy_row['macs'] / student_row['macs']:.0%}.")
    plots = save_plots(work_dir, read_scalars(teacher_dir), read_scalars(student_dir), table)
    print('plots: ' + ', '.join(plots))
    print_study_results(format_table)
    print(f'done in {(time.time() - start) / 60:.1f} min (torch threads: {torch.get_num_threads()})')
    return 0


if __name__ == '__main__':
    sys.exit(main())
