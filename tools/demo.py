"""mmcompact's quick start (the main job): the whole story on real mmdet machinery, on CPU.

  1. easy synthetic COCO-format detection data (plain backgrounds, 1-3 large shapes)  (tools/make_synthetic.py)
  2. a RetinaNet-ResNet18-FPN teacher at a quarter width                              (tools/train.py)
  3. the plain GhostNetV3-0.5x RetinaNet student (no re-param, no KD)
  4. the recipe student: the same network re-parameterized and distilled (PKD + head KD, EMA)
  5. fold the recipe student, check it                                                 (tools/fold.py)
  6. COCO mAP of all four (the two students and the folded one share one deploy network), table, plots

    python tools/demo.py [--work-dir work_dirs/demo] [--teacher-iters 1200] [--iters 250] [--large]

About 13-16 minutes on the slower of this workplace's 2-core CPUs (three runs: README); --large makes everything
bigger for a GPU. The students' schedule is too short on a CPU to show what the recipe is worth, so the demo
ends with the measured recipe studies (results/recipe_study*.json), labelled as such, next to its own numbers.
"""
import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CONFIGS = os.path.join(ROOT, 'configs', 'demo')
TEACHER = os.path.join(CONFIGS, 'teacher_retinanet_r18-0.25x_fpn_synthetic.py')
STUDENT = os.path.join(CONFIGS, 'student_retinanet_ghostnetv3-0.5x_synthetic.py')
DISTILL = os.path.join(CONFIGS, 'student_retinanet_ghostnetv3-0.5x_kd_synthetic.py')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--work-dir', default='work_dirs/demo')
    parser.add_argument('--teacher-iters', type=int, default=1200, help='training iterations of the teacher')
    parser.add_argument('--iters', type=int, default=250, help='training iterations of each student')
    parser.add_argument('--num-train', type=int, default=400)
    parser.add_argument('--num-val', type=int, default=80)
    parser.add_argument('--large', action='store_true',
                        help='GPU-sized run: 10x the data, 10x the iterations')
    return parser.parse_args(argv)


def print_study_results(format_table) -> None:
    """The measured recipe studies (the results/*.json files named in ``documents``, each with the document
    that explains it), printed beside this run and labelled as such: a CPU-sized demo is too short to show
    what the recipe is worth."""
    import json
    documents = {'recipe_study.json': 'recipe_study.md', 'recipe_study_e12.json': 'recipe_study.md, 12-epoch section',
                 'recipe_study_r18s.json': 'recipe_study.md, ResNet-18-0.25x section',
                 'recipe_study_r18s_recipe.json': 'recipe_study.md, full-recipe section',
                 'recipe_study_r18s_kd30.json': 'recipe_study.md, KD replication section',
                 'recipe_study_r18s_randaug.json': 'recipe_study.md, RandAugment + RandomErasing section',
                 'recipe_study_r18s_randaug_rep.json': 'recipe_study.md, RandAugment + RandomErasing replication',
                 'recipe_study_det.json': 'recipe_study_det.md'}
    for name, document in documents.items():
        path = os.path.join(ROOT, 'results', name)
        if not os.path.isfile(path):
            continue
        with open(path) as f:
            study = json.load(f)
        digits = 3 if 'mAP' in study['metric'] else 2
        rows = [['variant (same deploy network)', study['metric'] + ' mean', '95% CI', 'seeds']]
        for variant, v in study['variants'].items():
            rows.append([variant, f"{v['mean']:.{digits}f}", f"+-{v['ci95']:.{digits}f}", str(len(v['seeds']))])
        if study.get('teacher') is not None:
            rows.append(['teacher', f"{study['teacher']:.{digits}f}", '', '1'])
        print(f"\nNot this run: a measured recipe study ({study['title']}; "
              f"results/{document}):")
        print(format_table(rows, total_row=False))


def step(clock: list, name: str, total: int, message: str) -> None:
    """Print the next step's header (numbered from ``clock``) and note its ``(name, start seconds)`` there."""
    clock.append((name, time.time()))
    print(f'\n[{len(clock)}/{total}] {message}', flush=True)


def time_table(clock: list, train_logs: dict, format_table) -> str:
    """Where the run's time went: the wall minutes of each step in ``clock`` (up to the start of the last)
    and, for the training steps, the median logged seconds per iteration (``train_logs``: step name -> the
    run's scalar records). A step far slower than the README's idle figures means a slower or loaded machine."""
    import statistics
    rows = [['step', 'wall time', 's / iteration (median)']]
    for (name, begin), (_, end) in zip(clock, clock[1:]):
        times = [r['time'] for r in train_logs.get(name, []) if 'time' in r]
        rows.append([name, f'{(end - begin) / 60:.2f} min', f'{statistics.median(times):.3f}' if times else ''])
    rows.append(['all steps', f'{(clock[-1][1] - clock[0][1]) / 60:.2f} min', ''])
    return format_table(rows, total_row=False)


def cfg_options(options: dict) -> list:
    return ['--cfg-options'] + [f'{k}={v}' for k, v in options.items()]


def save_plots(out_dir: str, teacher_log: list, plain_log: list, student_log: list, table: list) -> list:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    paths = []
    fig, ax = plt.subplots(figsize=(7, 4))
    for log, key, label in ((teacher_log, 'loss', 'teacher: loss'),
                            (plain_log, 'loss_cls', 'plain student: loss_cls'),
                            (student_log, 'loss_cls', 'recipe student: loss_cls (task)'),
                            (student_log, 'loss_pkd_fpn', 'recipe student: loss_pkd_fpn'),
                            (student_log, 'loss_kd_cls', 'recipe student: loss_kd_cls')):
        points = [(r['step'], r[key]) for r in log if key in r and 'step' in r]
        if points:
            ax.plot(*zip(*points), label=label)
    ax.set_xlabel('iteration')
    ax.set_ylabel('loss')
    ax.set_title('Training losses (teacher, plain student, distilled recipe student)')
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
    ax.set_title('COCO evaluation on the synthetic val split (students: one deploy network)')
    ax.legend()
    fig.tight_layout()
    paths.append(os.path.join(out_dir, 'map.png'))
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 4))
    points = {}  # rows at the same point (a student and its folded form) share one marker and one label
    for row in table:
        points.setdefault((row['macs'] / 1e6, row['mAP']), []).append(row['name'])
    for (macs, mean_ap), point_names in points.items():
        ax.scatter(macs, mean_ap, s=60)
        ax.annotate(' = '.join(point_names), (macs, mean_ap), textcoords='offset points', xytext=(5, 5),
                    fontsize=8)
    ax.margins(x=0.2, y=0.1)
    ax.set_xlabel('deploy MACs (M, at the demo input size)')
    ax.set_ylabel('bbox mAP')
    ax.set_title('bbox mAP vs deploy MACs')
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
    from mmcompact.analysis import format_table, measure_latency, read_scalars
    from mmcompact.apis import (PLAIN_GHOSTNET_OPTIONS, coco_data_options, evaluate, run_tool,
                                schedule_overrides)
    from mmcompact.deploy import deploy_config
    from mmcompact.structure import count_deployed
    from mmcompact.utils import build_model, load_config
    from mmcompact.checkpoint import safe_load

    work_dir = os.path.abspath(args.work_dir)
    teacher_iters, iters, num_train, num_val = args.teacher_iters, args.iters, args.num_train, args.num_val
    if args.large:
        teacher_iters, iters, num_train, num_val = (v * 10 for v in (teacher_iters, iters, num_train, num_val))
    data_dir = os.path.join(work_dir, 'data')
    data = coco_data_options(data_dir)
    total, clock = 7, []

    step(clock, 'data', total,
         f'easy synthetic COCO-format data: {num_train} train + {num_val} val images -> {data_dir}')
    if os.path.isfile(os.path.join(data_dir, 'annotations', 'instances_val.json')):
        print('(already there: reused; delete the folder to regenerate)')
    elif run_tool(f'{HERE}/make_synthetic.py', ['det', data_dir, '--num-train', num_train, '--num-val', num_val,
                                                 '--classes', 3, '--min-size', 128, '--max-size', 160,
                                                 '--max-objects', 3, '--no-clutter']):
        return 1

    teacher_dir = os.path.join(work_dir, 'teacher')
    teacher_ckpt = os.path.join(teacher_dir, f'iter_{teacher_iters}.pth')
    step(clock, 'teacher', total,
         f'train the teacher (RetinaNet-ResNet18-FPN at a quarter width, {teacher_iters} iterations) -> {teacher_dir}')
    if run_tool(f'{HERE}/train.py', [TEACHER, '--work-dir', teacher_dir] + cfg_options(
            {**data, **schedule_overrides(teacher_iters)})):
        return 1

    plain_dir = os.path.join(work_dir, 'plain_student')
    step(clock, 'plain student', total,
         f'train the plain GhostNetV3-0.5x student ({iters} iterations, no re-param, no KD) -> {plain_dir}')
    if run_tool(f'{HERE}/train.py', [STUDENT, '--work-dir', plain_dir] + cfg_options(
            {**data, **schedule_overrides(iters), **PLAIN_GHOSTNET_OPTIONS})):
        return 1

    student_dir = os.path.join(work_dir, 'student')
    step(clock, 'recipe student', total, f'distill the recipe student (re-param GhostNetV3-0.5x + PKD + head KD + '
                                          f'EMA, {iters} iterations) -> {student_dir}')
    if run_tool(f'{HERE}/train.py', [DISTILL, '--work-dir', student_dir] + cfg_options(
            {**data, **schedule_overrides(iters), 'model.teacher_checkpoint': teacher_ckpt})):
        return 1

    step(clock, 'fold', total, 'fold the exported recipe student and check it (tools/fold.py)')
    folded = os.path.join(student_dir, 'student_folded.pth')
    if run_tool(f'{HERE}/fold.py', [STUDENT, os.path.join(student_dir, 'student.pth'), folded, '--shape', 160,
                                     160, '--force'] + cfg_options(data)):
        return 1

    step(clock, 'evaluation, counting, latency', total,
         'COCO evaluation of the teacher, both students and the folded recipe student')
    teacher_cfg = load_config(TEACHER, data)
    student_cfg = load_config(STUDENT, data)
    plain_cfg = load_config(STUDENT, {**data, **PLAIN_GHOSTNET_OPTIONS})
    deploy_cfg, _ = deploy_config(student_cfg)
    entries = [('teacher', teacher_cfg, teacher_ckpt),
               ('plain student', plain_cfg, os.path.join(plain_dir, f'iter_{iters}.pth')),
               ('recipe student', student_cfg, os.path.join(student_dir, 'student.pth')),
               ('recipe student deploy', deploy_cfg, folded)]
    table = []
    for name, cfg, ckpt in entries:
        metrics = evaluate(cfg, ckpt, os.path.join(work_dir, 'eval', name.replace(' ', '_')))
        if 'coco/bbox_mAP' not in metrics:  # CocoMetric reports nothing when there is no detection at all
            print(f'{name}: no detection above the score threshold: mAP 0')
        model = build_model(cfg)
        model.load_state_dict(safe_load(ckpt)['state_dict'], strict=True)
        complexity = count_deployed(model, (3, 160, 160))
        table.append(dict(name=name, model=model.eval(), params=complexity['params'], macs=complexity['macs'],
                          mAP=metrics.get('coco/bbox_mAP', 0.0), mAP50=metrics.get('coco/bbox_mAP_50', 0.0)))
    latency = measure_latency({row['name']: row['model'] for row in table}, 1, (160, 160), warmup=2, iters=10)

    step(clock, 'summary', total, 'summary (this run)')
    rows = [['model', 'deploy params', 'deploy MACs @160', 'latency bs1 (CPU)', 'bbox mAP', 'mAP@0.5']]
    for row in table:
        rows.append([row['name'], f"{row['params'] / 1e6:.2f}M", f"{row['macs'] / 1e6:.1f}M",
                     f"{latency[row['name']]['ms']:.1f} ms", f"{row['mAP']:.3f}", f"{row['mAP50']:.3f}"])
    print(format_table(rows, total_row=False))
    plain_row, student_row, deploy_row = table[1:]
    print(f"\nthe students share one deploy network ({deploy_row['macs'] / 1e6:.1f}M MACs); after {iters} "
          f"iterations the recipe student has {student_row['mAP']:.3f} mAP, the plain one {plain_row['mAP']:.3f} "
          f"(one seed each: see the studies below for what is established). Folding kept the recipe student's "
          f"mAP ({student_row['mAP']:.3f} -> {deploy_row['mAP']:.3f}).")
    train_logs = {'teacher': read_scalars(teacher_dir), 'plain student': read_scalars(plain_dir),
                  'recipe student': read_scalars(student_dir)}
    plots = save_plots(work_dir, train_logs['teacher'], train_logs['plain student'], train_logs['recipe student'],
                       table)
    print('plots: ' + ', '.join(plots))
    print('\nwhere the time went (this run):')
    print(time_table(clock, train_logs, format_table))
    print_study_results(format_table)
    print(f'done in {(time.time() - start) / 60:.1f} min (torch threads: {torch.get_num_threads()})')
    return 0


if __name__ == '__main__':
    sys.exit(main())
