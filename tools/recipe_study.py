"""Does the GhostNetV3 recipe help at small scale? plain vs re-param vs re-param + KD (vs re-param +
Mixup/CutMix for classification) student, same deploy architecture and FLOPs, several seeds, on synthetic
classification or COCO-format detection data.

    python tools/recipe_study.py [--task cls] [--work-dir work_dirs/recipe_study] [--seeds 0 1 2]
                                 [--epochs 12] [--teacher-epochs N] [--num-train 600] [--num-val 300]
    python tools/recipe_study.py --task det [--iters 400] [--teacher-iters N] ...

Classification: GhostNetV3-0.5x classifiers, ResNet-18 teacher, top-1. Detection: RetinaNet-FPN with a
GhostNetV3-0.5x backbone, RetinaNet-R18 teacher (PKD on the FPN + head logit KD), COCO bbox mAP.
Writes results.md (table, mean and spread, the commands) and recipe_study.png into the work dir. Each
step is a normal tool run: make_synthetic.py, train.py on configs/study/*.py or configs/demo/*.py.
"""
import argparse
import os
import re
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
STUDY = os.path.join(os.path.dirname(HERE), 'configs', 'study')
STUDENT = os.path.join(STUDY, 'ghostnetv3-0.5x_synthetic_cls.py')
TEACHER = os.path.join(STUDY, 'resnet18_synthetic_cls.py')
DISTILL = os.path.join(STUDY, 'ghostnetv3-0.5x_kd_synthetic_cls.py')
MIXUP = os.path.join(STUDY, 'ghostnetv3-0.5x_mixup_synthetic_cls.py')
DEMO = os.path.join(os.path.dirname(HERE), 'configs', 'demo')
DET_STUDENT = os.path.join(DEMO, 'student_retinanet_ghostnetv3-0.5x_synthetic.py')
DET_TEACHER = os.path.join(DEMO, 'teacher_retinanet_r18_fpn_synthetic.py')
DET_DISTILL = os.path.join(DEMO, 'student_retinanet_ghostnetv3-0.5x_kd_synthetic.py')
PLAIN = {'model.backbone.num_branches': 1, 'model.backbone.extra_branches': False}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--task', choices=['cls', 'det'], default='cls')
    parser.add_argument('--work-dir', help='default: work_dirs/recipe_study (cls), work_dirs/recipe_study_det')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--epochs', type=int, default=12)
    parser.add_argument('--teacher-epochs', type=int, help='default: --epochs')
    parser.add_argument('--iters', type=int, default=400, help='det: student training iterations')
    parser.add_argument('--teacher-iters', type=int, help='det: default: --iters')
    parser.add_argument('--num-train', type=int, default=600)
    parser.add_argument('--num-val', type=int, default=300)
    return parser.parse_args(argv)


def variants(task: str, teacher_ckpt: str) -> dict:
    """name -> (config, cfg-options): same deploy network, different training."""
    if task == 'det':
        return {'plain': (DET_STUDENT, PLAIN), 're-param': (DET_STUDENT, {}),
                're-param + KD': (DET_DISTILL, {'model.teacher_checkpoint': teacher_ckpt})}
    return {
        'plain': (STUDENT, PLAIN),
        're-param': (STUDENT, {}),
        're-param + KD': (DISTILL, {'model.teacher_checkpoint': teacher_ckpt}),
        're-param + Mixup/CutMix': (MIXUP, {}),
    }




def main(argv=None) -> int:
    args = parse_args(argv)
    start = time.time()
    sys.path.insert(0, HERE)
    import make_synthetic
    import train as train_tool

    import mmcompact  # noqa: F401
    from mmcompact.analysis import count_complexity, final_metric
    from mmcompact.apis import build_model, coco_data_options, load_config, schedule_overrides
    from mmcompact.reparam import reparameterize_model

    det = args.task == 'det'
    work_dir = os.path.abspath(args.work_dir or ('work_dirs/recipe_study_det' if det else
                                                 'work_dirs/recipe_study'))
    data = os.path.join(work_dir, 'data')
    if det:
        metric, metric_name, input_size = 'coco/bbox_mAP', 'bbox mAP', 160
        teacher_iters = args.teacher_iters or args.iters
        common = {**coco_data_options(data), **schedule_overrides(args.iters)}
        teacher_options = {**common, **schedule_overrides(teacher_iters)}
        teacher_config, teacher_name = DET_TEACHER, 'RetinaNet-R18-FPN'
        teacher_ckpt = os.path.join(work_dir, 'teacher', f'iter_{teacher_iters}.pth')
        schedule = f'students {args.iters} iterations, teacher {teacher_iters}'
        data_argv = ['det', data, '--classes', '3', '--min-size', '160', '--max-size', '200']
    else:
        metric, metric_name, input_size = 'accuracy/top1', 'top-1', 64
        teacher_epochs = args.teacher_epochs or args.epochs

        def epochs(n):
            return {'train_cfg.max_epochs': n, 'train_cfg.val_interval': n, 'param_scheduler.0.T_max': n,
                    'default_hooks.checkpoint.interval': n}
        common = {**{f'{split}_dataloader.dataset.data_root': data for split in ('train', 'val', 'test')},
                  **epochs(args.epochs)}
        teacher_options = {**common, **epochs(teacher_epochs)}
        teacher_config, teacher_name = TEACHER, 'ResNet-18'
        teacher_ckpt = os.path.join(work_dir, 'teacher', f'epoch_{teacher_epochs}.pth')
        schedule = f'students {args.epochs} epochs, teacher {teacher_epochs}'
        data_argv = ['cls', data, '--classes', '6', '--size', '64']
    commands = []

    def run(config, run_dir, options):
        argv = [config, '--work-dir', run_dir, '--cfg-options'] + [f'{k}={v}' for k, v in options.items()]
        commands.append('python tools/train.py ' + ' '.join(os.path.relpath(a) if os.path.isabs(a) else a
                                                           for a in argv))
        done = final_metric(run_dir, metric)
        if done is not None:  # finished earlier: a re-run of the study only trains what is missing
            return done
        if train_tool.main(argv):
            raise RuntimeError(f'training failed: {run_dir}')
        score = final_metric(run_dir, metric)
        if score is None and det:  # CocoMetric logs nothing when there is no detection above the threshold
            print(f'{run_dir}: no detection above the score threshold: mAP 0')
            score = 0.0
        return score

    if not os.path.isdir(os.path.join(data, 'val')):
        make_synthetic.main(data_argv + ['--num-train', str(args.num_train), '--num-val', str(args.num_val)])
    teacher_score = run(teacher_config, os.path.join(work_dir, 'teacher'), teacher_options)

    results = {}
    for name, (config, options) in variants(args.task, teacher_ckpt).items():
        for seed in args.seeds:
            run_dir = os.path.join(work_dir, re.sub(r'[^a-z0-9]+', '_', name.lower()), f'seed{seed}')
            score = run(config, run_dir, {**common, **options, 'randomness.seed': seed})
            results.setdefault(name, []).append(score)
            print(f'== {name}, seed {seed}: {metric_name} {score:.3f}', flush=True)

    # Same deploy network for every variant: count it once per variant to show it.
    deploy_macs = {}
    student_config = DET_STUDENT if det else STUDENT
    for name, (config, options) in variants(args.task, teacher_ckpt).items():
        cfg = load_config(student_config, {k: v for k, v in options.items() if k.startswith('model.backbone')})
        model = build_model(cfg)
        model.eval()
        deploy_macs[name] = count_complexity(reparameterize_model(model), (1, 3, input_size, input_size),
                                             parts=[]).macs

    lines = [f'| variant | deploy MACs @{input_size}x{input_size} | {metric_name} per seed | mean | std |',
             '|---|---|---|---|---|']
    for name, scores in results.items():
        spread = statistics.stdev(scores) if len(scores) > 1 else 0.0
        lines.append(f"| {name} | {deploy_macs[name] / 1e6:.1f}M | {', '.join(f'{a:.3f}' for a in scores)} | "
                     f'{statistics.mean(scores):.3f} | {spread:.3f} |')
    lines.append(f'| teacher ({teacher_name}) | | {teacher_score:.3f} | | |')
    table = '\n'.join(lines)
    with open(os.path.join(work_dir, 'results.md'), 'w') as f:
        f.write(f'# Recipe study (synthetic {args.task}, {args.num_train} train / {args.num_val} val images, '
                f'{schedule}, seeds {args.seeds})\n\n{table}\n\nCommands:\n\n```\n' + '\n'.join(commands)
                + '\n```\n')

    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4))
    names = list(results)
    ax.bar([n.replace(' + ', '\n+ ') for n in names], [statistics.mean(results[n]) for n in names],
           yerr=[statistics.stdev(results[n]) if len(results[n]) > 1 else 0 for n in names], capsize=6)
    for i, n in enumerate(names):
        ax.scatter([i] * len(results[n]), results[n], color='black', zorder=3, s=12)
    ax.axhline(teacher_score, linestyle='--', color='gray', label=f'teacher {teacher_score:.3g}')
    ax.set_ylabel(metric_name)
    ax.set_title(('RetinaNet-GhostNetV3-0.5x' if det else 'GhostNetV3-0.5x') + ' student, same deploy network')
    ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(work_dir, 'recipe_study.png'), dpi=120)
    print(table)
    print(f'wrote {work_dir}/results.md and recipe_study.png in {(time.time() - start) / 60:.1f} min')
    return 0


if __name__ == '__main__':
    sys.exit(main())
