"""Does the learned structure beat a uniform width multiplier (and random structures) at the same deploy
MACs? On the recipe study's synthetic data and ResNet-18 teacher (run tools/recipe_study.py first).

    python tools/structure_study.py [--work-dir work_dirs/structure_study] [--budgets 40M 20M]
                                    [--seeds 0 1 2] [--epochs 5] [--search-epochs 2]

Steps, each a normal tool run: search_structure.py, export_structure.py per budget (learned; and a random
configuration within 80-100% of the budget, same block-distilled init), a ResNet-18 with a uniform width
multiplier at the same budget, then train.py on each student's KD config (logit KD from the teacher) per
seed. Writes results.md, measured.json and the search plots (pareto.png with the measured points).
"""
import argparse
import json
import os
import random
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SEARCH_CONFIG = os.path.join(ROOT, 'configs', 'structure', 'resnet18_synthetic_cls_search.py')


def parse_args(argv=None):
    from mmcompact.analysis import parse_amount
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--work-dir', default='work_dirs/structure_study')
    parser.add_argument('--recipe-dir', default='work_dirs/recipe_study',
                        help='the recipe study (data/ and teacher/)')
    parser.add_argument('--budgets', type=parse_amount, nargs='+', default=[40e6, 20e6])
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--epochs', type=int, default=5)
    parser.add_argument('--search-epochs', type=int, default=2)
    parser.add_argument('--methods', nargs='+', default=['learned', 'uniform', 'random'],
                        choices=['learned', 'uniform', 'random'])
    return parser.parse_args(argv)


def uniform_width_config(cfg, budget: float, input_shape):
    """The teacher config with a ResNet whose stem and stage widths are scaled by one multiplier: the
    widest (channels a multiple of 8) whose deploy MACs fit ``budget``."""
    from mmengine.config import Config

    from mmcompact.utils import build_model
    from mmcompact.structure import count_deployed

    for channels in range(64, 0, -8):
        student = Config(dict(cfg.to_dict()))
        student.pop('structure_search', None)
        student.model.backbone.update(stem_channels=channels, base_channels=channels)
        student.model.head.in_channels = channels * 8
        if count_deployed(build_model(student), input_shape)['macs'] <= budget:
            return student
    raise ValueError(f'no uniform width fits {budget:,.0f} MACs')


def main(argv=None) -> int:
    args = parse_args(argv)
    start = time.time()

    import mmcompact  # noqa: F401
    from mmcompact.analysis import final_metric
    from mmcompact.apis import run_tool
    from mmcompact.utils import build_model, load_config
    from mmcompact.structure import count_deployed, export_structure as export_lib, load_search
    from mmcompact.structure.api import write_student_configs

    work_dir = os.path.abspath(args.work_dir)
    recipe = os.path.abspath(args.recipe_dir)
    data = os.path.join(recipe, 'data')
    teachers = sorted(f for f in os.listdir(os.path.join(recipe, 'teacher')) if f.startswith('epoch_')) \
        if os.path.isdir(os.path.join(recipe, 'teacher')) else []
    if not teachers:
        print(f'error: no teacher checkpoint in {recipe}/teacher: run tools/recipe_study.py first',
              file=sys.stderr)
        return 1
    teacher_ckpt = os.path.join(recipe, 'teacher', teachers[-1])
    data_options = {f'{split}.dataset.data_root': data
                    for split in ('train_dataloader', 'val_dataloader', 'test_dataloader')}
    commands = []

    def tool(name, argv):
        shown = [os.path.relpath(a) if isinstance(a, str) and os.path.isabs(a) else str(a) for a in argv]
        commands.append(f'python tools/{name}.py ' + ' '.join(shown))
        if run_tool(os.path.join(HERE, f'{name}.py'), argv):
            raise RuntimeError(f'tools/{name}.py failed: {argv}')

    search_dir = os.path.join(work_dir, 'search')
    commands.append(f'python tools/structure_study.py --work-dir {args.work_dir} --recipe-dir {args.recipe_dir} '
                    f"--budgets {' '.join(f'{b / 1e6:g}M' for b in args.budgets)} --seeds "
                    f"{' '.join(map(str, args.seeds))} --epochs {args.epochs} --search-epochs "
                    f"{args.search_epochs} --methods {' '.join(args.methods)}   # all of the below")
    if not os.path.isfile(os.path.join(search_dir, 'search.json')):
        options = dict(data_options, **{'structure_search.teacher_checkpoint': teacher_ckpt,
                                        'structure_search.epochs': args.search_epochs})
        tool('search_structure', [SEARCH_CONFIG, '--work-dir', search_dir, '--resume', '--cfg-options']
             + [f'{k}={v}' for k, v in options.items()])
    result = load_search(search_dir)
    input_shape = tuple(result['input_shape'])
    cfg = load_config(SEARCH_CONFIG, data_options)

    train_options = dict(data_options, **{
        'train_cfg.max_epochs': args.epochs, 'train_cfg.val_interval': args.epochs,
        'param_scheduler.0.T_max': args.epochs, 'default_hooks.checkpoint.interval': args.epochs})
    measured = []
    for budget in args.budgets:
        tag = f'{budget / 1e6:g}M'
        students = {}
        if 'learned' in args.methods:
            out = os.path.join(work_dir, tag, 'learned')
            if not os.path.isfile(os.path.join(out, 'student_kd.py')):
                tool('export_structure', [search_dir, '--macs', budget, '--out', out])
            students['learned'] = out
        if 'random' in args.methods:
            rng = random.Random(int(budget))
            costs, fixed = result['costs']['table'], result['costs']['fixed']['macs']
            fits = []
            for _ in range(20000):
                choice = [rng.randrange(len(labels)) for labels in result['labels']]
                macs = fixed + sum(costs[b][c]['macs'] for b, c in enumerate(choice))
                if 0.8 * budget <= macs <= budget:
                    fits.append(choice)
            out = os.path.join(work_dir, tag, 'random')
            if fits and not os.path.isfile(os.path.join(out, 'student_kd.py')):
                export_lib(search_dir, {}, out, choice=fits[0])
                commands.append(f'(random configuration {fits[0]} exported with '
                                'mmcompact.structure.export_structure(choice=...))')
            if fits:
                students['random'] = out
        if 'uniform' in args.methods:
            out = os.path.join(work_dir, tag, 'uniform')
            if not os.path.isfile(os.path.join(out, 'student_kd.py')):
                student_cfg = uniform_width_config(cfg, budget, input_shape)
                write_student_configs(student_cfg, out, os.path.join(search_dir, 'search_config.py'),
                                      teacher_ckpt, 'head.fc')
            students['uniform'] = out
        for method, out in students.items():
            macs = count_deployed(build_model(load_config(os.path.join(out, 'student.py'))), input_shape)['macs']
            for seed in args.seeds:
                run_dir = os.path.join(out, f'seed{seed}')
                if final_metric(run_dir, 'accuracy/top1') is None:
                    tool('train', [os.path.join(out, 'student_kd.py'), '--work-dir', run_dir, '--cfg-options']
                         + [f'{k}={v}' for k, v in dict(train_options, **{'randomness.seed': seed}).items()])
                top1 = final_metric(run_dir, 'accuracy/top1')
                measured.append(dict(name=method, budget=budget, macs=macs, seed=seed, top1=top1))
                print(f'== {tag} {method} seed {seed}: {macs / 1e6:.2f}M MACs, top-1 {top1:.2f}', flush=True)

    with open(os.path.join(work_dir, 'measured.json'), 'w') as f:
        json.dump(measured, f, indent=1)
    lines = ['| budget | method | deploy MACs | top-1 per seed | mean | std |', '|---|---|---|---|---|---|']
    for budget in args.budgets:
        for method in args.methods:
            runs = [m for m in measured if m['budget'] == budget and m['name'] == method]
            if not runs:
                continue
            accs = [m['top1'] for m in runs]
            lines.append(f"| {budget / 1e6:g}M | {method} | {runs[0]['macs'] / 1e6:.2f}M | "
                         f"{', '.join(f'{a:.2f}' for a in accs)} | {statistics.mean(accs):.2f} | "
                         f"{statistics.stdev(accs) if len(accs) > 1 else 0:.2f} |")
    table = '\n'.join(lines)
    check = result['additivity']
    search_minutes = result['search_seconds'] / 60
    with open(os.path.join(work_dir, 'results.md'), 'w') as f:
        f.write(f'# Structure study (teacher {os.path.relpath(teacher_ckpt, ROOT)}, {args.epochs} epochs KD '
                f'fine-tuning, seeds {args.seeds})\n\n{table}\n\nTeacher: '
                f"{result['costs']['teacher']['macs'] / 1e6:.2f}M MACs. Search: {search_minutes:.1f} min; "
                f"additivity Spearman {check['spearman']:.3f} over {len(check['choices'])} configurations.\n\n"
                'Commands:\n\n```\n' + '\n'.join(commands) + '\n```\n')
    tool('plot_structure', [search_dir, '--measured', os.path.join(work_dir, 'measured.json'), '--out', work_dir])
    print(table)
    print(f'wrote {work_dir}/results.md in {(time.time() - start) / 60:.1f} min')
    return 0


if __name__ == '__main__':
    sys.exit(main())
