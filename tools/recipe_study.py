"""Does the GhostNetV3 recipe help at small scale? plain vs re-param vs re-param + KD vs re-param +
Mixup/CutMix student, same deploy architecture and FLOPs, several seeds, on synthetic classification data.

    python tools/recipe_study.py [--work-dir work_dirs/recipe_study] [--seeds 0 1 2] [--epochs 12]
                                 [--teacher-epochs N] [--num-train 600] [--num-val 300]

Writes results.md (table, mean and spread, the commands) and recipe_study.png into the work dir. Each
step is a normal tool run: make_synthetic.py, train.py on configs/study/*.py.
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


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--work-dir', default='work_dirs/recipe_study')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--epochs', type=int, default=12)
    parser.add_argument('--teacher-epochs', type=int, help='default: --epochs')
    parser.add_argument('--num-train', type=int, default=600)
    parser.add_argument('--num-val', type=int, default=300)
    return parser.parse_args(argv)


def variants(teacher_ckpt: str) -> dict:
    """name -> (config, cfg-options): same deploy network, different training."""
    return {
        'plain': (STUDENT, {'model.backbone.num_branches': 1, 'model.backbone.extra_branches': False}),
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
    from mmcompact.apis import build_model, load_config
    from mmcompact.reparam import reparameterize_model

    work_dir = os.path.abspath(args.work_dir)
    data = os.path.join(work_dir, 'data')
    common = {'train_dataloader.dataset.data_root': data, 'val_dataloader.dataset.data_root': data,
              'test_dataloader.dataset.data_root': data, 'train_cfg.max_epochs': args.epochs,
              'train_cfg.val_interval': args.epochs, 'param_scheduler.0.T_max': args.epochs,
              'default_hooks.checkpoint.interval': args.epochs}
    commands = []

    def run(config, run_dir, options):
        argv = [config, '--work-dir', run_dir, '--cfg-options'] + [f'{k}={v}' for k, v in options.items()]
        commands.append('python tools/train.py ' + ' '.join(os.path.relpath(a) if os.path.isabs(a) else a
                                                           for a in argv))
        done = final_metric(run_dir, 'accuracy/top1')
        if done is not None:  # finished earlier: a re-run of the study only trains what is missing
            return done
        if train_tool.main(argv):
            raise RuntimeError(f'training failed: {run_dir}')
        return final_metric(run_dir, 'accuracy/top1')

    if not os.path.isdir(os.path.join(data, 'val')):
        make_synthetic.main(['cls', data, '--num-train', str(args.num_train), '--num-val', str(args.num_val),
                             '--classes', '6', '--size', '64'])
    teacher_dir = os.path.join(work_dir, 'teacher')
    teacher_epochs = args.teacher_epochs or args.epochs
    teacher_ckpt = os.path.join(teacher_dir, f'epoch_{teacher_epochs}.pth')
    teacher_acc = run(TEACHER, teacher_dir, {
        **common, 'train_cfg.max_epochs': teacher_epochs, 'train_cfg.val_interval': teacher_epochs,
        'param_scheduler.0.T_max': teacher_epochs, 'default_hooks.checkpoint.interval': teacher_epochs})

    results = {}
    for name, (config, options) in variants(teacher_ckpt).items():
        for seed in args.seeds:
            run_dir = os.path.join(work_dir, re.sub(r'[^a-z0-9]+', '_', name.lower()), f'seed{seed}')
            acc = run(config, run_dir, {**common, **options, 'randomness.seed': seed})
            results.setdefault(name, []).append(acc)
            print(f'== {name}, seed {seed}: top-1 {acc:.2f}', flush=True)

    # Same deploy network for every variant: count it once per variant to show it.
    deploy_macs = {}
    for name, (config, options) in variants(teacher_ckpt).items():
        cfg = load_config(STUDENT, {k: v for k, v in options.items() if k.startswith('model.backbone')})
        model = build_model(cfg)
        model.eval()
        deploy_macs[name] = count_complexity(reparameterize_model(model), (1, 3, 64, 64), parts=[]).macs

    lines = ['| variant | deploy MACs @64x64 | top-1 per seed | mean | std |', '|---|---|---|---|---|']
    for name, accs in results.items():
        spread = statistics.stdev(accs) if len(accs) > 1 else 0.0
        lines.append(f"| {name} | {deploy_macs[name] / 1e6:.1f}M | {', '.join(f'{a:.2f}' for a in accs)} | "
                     f'{statistics.mean(accs):.2f} | {spread:.2f} |')
    lines.append(f'| teacher (ResNet-18) | | {teacher_acc:.2f} | | |')
    table = '\n'.join(lines)
    with open(os.path.join(work_dir, 'results.md'), 'w') as f:
        f.write(f'# Recipe study (synthetic classification, {args.num_train} train / {args.num_val} val images, '
                f'students {args.epochs} epochs, teacher {teacher_epochs}, seeds {args.seeds})\n\n'
                f'{table}\n\nCommands:\n\n```\n' + '\n'.join(commands) + '\n```\n')

    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4))
    names = list(results)
    ax.bar([n.replace(' + ', '\n+ ') for n in names], [statistics.mean(results[n]) for n in names],
           yerr=[statistics.stdev(results[n]) if len(results[n]) > 1 else 0 for n in names], capsize=6)
    for i, n in enumerate(names):
        ax.scatter([i] * len(results[n]), results[n], color='black', zorder=3, s=12)
    ax.axhline(teacher_acc, linestyle='--', color='gray', label=f'teacher {teacher_acc:.1f}')
    ax.set_ylabel('top-1 (%)')
    ax.set_title('GhostNetV3-0.5x student, same deploy network')
    ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(work_dir, 'recipe_study.png'), dpi=120)
    print(table)
    print(f'wrote {work_dir}/results.md and recipe_study.png in {(time.time() - start) / 60:.1f} min')
    return 0


if __name__ == '__main__':
    sys.exit(main())
