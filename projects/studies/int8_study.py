"""Does re-parameterization make a folded student less quantization-friendly? INT8 drop of the recipe study's
students (plain, re-param, re-param + KD: one deploy network per task), per seed and calibration method.

    python projects/studies/int8_study.py [--task fmnist] [--recipe-dir work_dirs/fashion_mnist_recipe]
        [--seeds 0 1 2] [--variants plain re-param "re-param + KD"]
        [--methods minmax entropy entropy-tails percentile]
        [--calib-num 256] [--work-dir work_dirs/fashion_mnist_int8]
    python projects/studies/int8_study.py --task det [--recipe-dir work_dirs/recipe_study_det] [--work-dir
        work_dirs/det_int8] ...

fmnist: the ResNet-18-0.25x students of ``recipe_study.py --task fmnist`` (top-1 on the 10,000 test images, 32
px). det: the RetinaNet-GhostNetV3-0.5x students of ``recipe_study.py --task det`` (COCO bbox mAP on the study's
synthetic validation set, the demo's kind of scenes, 160x160 export, images padded to it). Every quantization is
one `tools/deployment/quantize.py` run (per-channel weights, QDQ); a finished one (its quantize.json) is reused,
so re-running continues the study. A distilled run's student is the one its StudentExportHook wrote, or is
exported (`tools/deployment/export_student.py`). Writes results.md and results.json: FP32 and INT8 metric and the
drop, mean with 95% CI over seeds, the drop of each re-parameterized variant against the plain one, paired by
seed, and how many activation ranges each calibration cuts to under 1/10 of MinMax's (TAIL_FLOOR).
"""
import argparse
import functools
import json
import os
import re
import shlex
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
FMNIST = os.path.join(ROOT, 'configs', 'fashion_mnist')
DEMO = os.path.join(ROOT, 'configs', 'demo')
TASKS = ('det', 'fmnist')


def task_spec(task: str) -> dict:
    """The task's student config, distillation config, the plain network's --cfg-options, metric, export shape,
    decimals of the metric and default folders."""
    from mmcompact.cli import PLAIN_GHOSTNET_OPTIONS
    return {
        'fmnist': dict(student=os.path.join(FMNIST, 'resnet18-0.25x-reparam_1xb128_fashion-mnist.py'),
                       kd=os.path.join(FMNIST, 'resnet18-0.25x-reparam_resnet18_1xb128_fashion-mnist_kd.py'),
                       plain={'model.backbone.deploy': True}, metric='accuracy/top1', shape=(32, 32), digits=2,
                       recipe_dir='work_dirs/fashion_mnist_recipe', work_dir='work_dirs/fashion_mnist_int8',
                       title='Fashion-MNIST ResNet-18-0.25x students'),
        'det': dict(student=os.path.join(DEMO, 'student_retinanet_ghostnetv3-0.5x_synthetic.py'),
                    kd=os.path.join(HERE, 'configs', 'kd_det', 'retinanet_ghostnetv3-0.5x_kd.py'),
                    plain=PLAIN_GHOSTNET_OPTIONS, metric='coco/bbox_mAP', shape=(160, 160), digits=3,
                    recipe_dir='work_dirs/recipe_study_det', work_dir='work_dirs/det_int8',
                    title='synthetic-detection RetinaNet-GhostNetV3-0.5x students'),
    }[task]

def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--task', choices=TASKS, default='fmnist')
    parser.add_argument('--recipe-dir', help='the work dir of projects/studies/recipe_study.py --task TASK '
                        '(default: its default)')
    parser.add_argument('--work-dir', help='default: work_dirs/fashion_mnist_int8 (fmnist), work_dirs/det_int8')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--variants', nargs='+', default=['plain', 're-param', 're-param + KD'])
    parser.add_argument('--methods', nargs='+', default=['minmax', 'entropy', 'percentile'],
                        choices=['minmax', 'entropy', 'entropy-tails', 'percentile'])
    parser.add_argument('--calib-num', type=int, default=256)
    parser.add_argument('--merge', metavar='JSON',
                        help='the results.json of an earlier invocation of this study whose work dir is gone (e.g. '
                             'results/det_int8.json): its per-seed records stand in for the (variant, seed, method) '
                             '--work-dir has not quantized (those are not quantized)')
    args = parser.parse_args(argv)
    args.spec = task_spec(args.task)
    args.recipe_dir = args.recipe_dir or args.spec['recipe_dir']
    args.work_dir = args.work_dir or args.spec['work_dir']
    try:
        args.merged = merged_runs(args.merge, args.spec['metric']) if args.merge else {}
    except (OSError, ValueError, KeyError) as err:
        parser.error(f'--merge {args.merge}: {err}')
    return args


def folder_name(variant: str) -> str:
    """The run folder of a variant, as recipe_study.py names it ('re-param + KD' -> 're_param_kd')."""
    return re.sub(r'[^a-z0-9]+', '_', variant.lower()).strip('_')


def data_options(args) -> dict:
    """The --cfg-options that point the task's configs at the recipe study's data (det: its generated set)."""
    if args.task != 'det':
        return {}
    from mmcompact.cli import coco_data_options
    return coco_data_options(os.path.join(os.path.abspath(args.recipe_dir), 'data'))


def student_checkpoint(args, variant: str, seed: int, log: str) -> tuple:
    """(config, checkpoint, --cfg-options) of one trained student; a distilled run's student is the
    ``student.pth`` its export hook wrote in the run folder, else exported from its last checkpoint."""
    from mmcompact.cli import run_tool
    spec = args.spec
    run_dir = os.path.join(os.path.abspath(args.recipe_dir), folder_name(variant), f'seed{seed}')
    pointer = os.path.join(run_dir, 'last_checkpoint')
    if not os.path.isfile(os.path.join(run_dir, 'train_finished.json')) or not os.path.isfile(pointer):
        raise FileNotFoundError(f'{run_dir} holds no finished run: run the recipe study (--task {args.task}) for '
                                f'{variant} seed {seed}')
    with open(pointer) as f:
        checkpoint = f.read().strip()
    if variant == 'plain':
        return spec['student'], checkpoint, spec['plain']
    if 'KD' not in variant:
        return spec['student'], checkpoint, {}
    if os.path.isfile(os.path.join(run_dir, 'student.pth')):
        return spec['student'], os.path.join(run_dir, 'student.pth'), {}
    out = os.path.join(os.path.abspath(args.work_dir), 'students', f'kd_seed{seed}')
    if not os.path.isfile(os.path.join(out, 'student.pth')):
        if run_tool(os.path.join(ROOT, 'tools', 'deployment', 'export_student.py'),
                    [spec['kd'], checkpoint, out, '--shape', *spec['shape'], '--force'], log=log):
            raise RuntimeError(f'exporting the student of {checkpoint} failed: see {log}')
    return spec['student'], os.path.join(out, 'student.pth'), {}


def merged_runs(path: str, metric: str) -> dict:
    """{(variant, seed, method): record} from a results.json written by ``report``; a record holds the
    quantize.json metrics ``report`` reads and the ``narrowed`` count (None where not counted)."""
    with open(path) as f:
        study = json.load(f)
    if study.get('metric') != metric:
        raise ValueError(f'--merge {path} holds {study.get("metric")!r} scores, this study {metric!r}: pass the '
                         'results.json of the same task')
    runs = {}
    for key, v in study['results'].items():
        variant, method = key.rsplit('/', 1)
        for seed, fp32 in v['fp32'].items():
            runs[variant, int(seed), method] = dict(metrics={'FP32': {metric: fp32}, 'INT8': {metric: v['int8'][seed]}},
                                                    narrowed=v['narrowed'].get(seed), merged=True)
    return runs


def quantized(args, variant: str, seed: int, method: str, log: str) -> dict:
    """quantize.json of one (variant, seed, method), run unless there or given by ``--merge``."""
    from mmcompact.cli import run_tool
    out = os.path.join(os.path.abspath(args.work_dir), folder_name(variant), f'seed{seed}', method)
    summary = os.path.join(out, 'quantize.json')
    if not os.path.isfile(summary) and (variant, seed, method) in args.merged:
        return args.merged[variant, seed, method]
    if not os.path.isfile(summary):
        config, checkpoint, options = student_checkpoint(args, variant, seed, log)
        options = {**data_options(args), **options}
        argv = [config, checkpoint, out, '--shape', *args.spec['shape'], '--calib-num', args.calib_num,
                '--calibrate', method, '--per-channel', '--force']
        if options:
            argv += ['--cfg-options'] + [f'{k}={v}' for k, v in options.items()]
        if run_tool(os.path.join(ROOT, 'tools', 'deployment', 'quantize.py'), argv, log=log, threads=1):
            raise RuntimeError(f'quantize.py failed for {variant} seed {seed} {method}: see {log}')
    with open(summary) as f:
        return json.load(f)


@functools.lru_cache(maxsize=None)
def scales_of(int8_path: str) -> dict:
    """deploy.activation_scales, read once per file: the report is rebuilt after every quantization."""
    from mmcompact.deploy import activation_scales
    return activation_scales(int8_path)


def narrowed_activations(args, variant: str, seed: int, method: str):
    """How many activations the (variant, seed, method) INT8 model keeps at under TAIL_FLOOR of the range the
    MinMax model of the same student keeps (a clipped tail); None for MinMax or without both QDQ files."""
    from mmcompact.deploy import TAIL_FLOOR
    folder = os.path.join(args.work_dir, folder_name(variant), f'seed{seed}')
    paths = [os.path.join(folder, m, 'int8.onnx') for m in ('minmax', method)]
    if method == 'minmax' or not all(map(os.path.isfile, paths)):
        return None
    reference, scales = map(scales_of, paths)
    return sum(scales[t] < TAIL_FLOOR * reference[t] for t in scales if t in reference)


def report(args, runs: dict) -> str:
    """results.md / results.json: per variant and method, FP32, INT8 and drop (mean +- 95% CI), and the drop
    of every other variant against the plain one, paired by seed."""
    from mmcompact.analysis import mean_ci, paired_diff
    from mmcompact.checkpoint import atomic_file
    from mmcompact.deploy import TAIL_FLOOR
    metric, digits = args.spec['metric'], args.spec['digits']
    name = metric.split('/')[-1]
    lines = [f'| variant | calibration | n | FP32 {name} | INT8 {name} | drop (FP32 - INT8) | drop vs plain, paired '
             f'| activations at < {TAIL_FLOOR:g} x MinMax range |', '|---|---|---|---|---|---|---|---|']
    summary = {'metric': metric, 'results': {}}
    for variant in args.variants:
        for method in args.methods:
            seeds = {s: r for (v, s, m), r in runs.items() if v == variant and m == method}
            if not seeds:
                continue
            fp32 = [r['metrics']['FP32'][metric] for r in seeds.values()]
            int8 = [r['metrics']['INT8'][metric] for r in seeds.values()]
            drops = {s: r['metrics']['FP32'][metric] - r['metrics']['INT8'][metric] for s, r in seeds.items()}
            plain = {s: r['metrics']['FP32'][metric] - r['metrics']['INT8'][metric]
                     for (v, s, m), r in runs.items() if v == 'plain' and m == method}
            versus = ''
            if variant != 'plain' and len(set(drops) & set(plain)) > 1:
                mean, half, p, pairs = paired_diff(drops, plain)
                versus = f'{mean:+.{digits}f} +- {half:.{digits}f} ({pairs} pairs, p {p:.3g})'
            cells = [mean_ci(fp32), mean_ci(int8), mean_ci(list(drops.values()))]
            narrowed = {s: r['narrowed'] if r.get('merged') else narrowed_activations(args, variant, s, method)
                        for s, r in seeds.items()}
            narrowed = {s: n for s, n in narrowed.items() if n is not None}
            clipped = '{:.1f} +- {:.1f}'.format(*mean_ci(list(narrowed.values()))) if len(narrowed) > 1 else ''
            lines.append(f'| {variant} | {method} | {len(seeds)} | '
                         + ' | '.join(f'{m:.{digits}f} +- {h:.{digits}f}' for m, h in cells)
                         + f' | {versus} | {clipped} |')
            summary['results'][f'{variant}/{method}'] = {
                key: {str(s): x for s, x in values.items()} for key, values in (
                    ('drop', drops), ('fp32', dict(zip(seeds, fp32))), ('int8', dict(zip(seeds, int8))),
                    ('narrowed', narrowed))}
    table = '\n'.join(lines)
    stand_ins = sorted({(v, s) for (v, s, m), r in runs.items() if r.get('merged')})
    if stand_ins:
        table += (f'\n\n{len(stand_ins)} students from `--merge {args.merge}` (an earlier invocation, same commands): '
                  + ', '.join(f'{v} seed {s}' for v, s in stand_ins))
    with atomic_file(os.path.join(args.work_dir, 'results.json'), 'w') as f:
        json.dump(summary, f, indent=1)
    with atomic_file(os.path.join(args.work_dir, 'results.md'), 'w') as f:
        f.write(f'# INT8 study ({args.spec["title"]}, seeds {args.seeds}, {args.calib_num} '
                f'calibration images, per-channel weights, QDQ)\n\n{table}\n\nCommand: python '
                f'projects/studies/int8_study.py {shlex.join(sys.argv[1:])}\n')
    return table


def main(argv=None) -> int:
    args = parse_args(argv)
    from tqdm import tqdm

    import mmcompact  # noqa: F401
    os.makedirs(args.work_dir, exist_ok=True)
    log = os.path.join(os.path.abspath(args.work_dir), 'study.log')
    jobs = [(v, s, m) for s in args.seeds for v in args.variants for m in args.methods]
    runs, failures = {}, []
    for job in tqdm(jobs, desc='int8 study', unit='model'):
        try:
            runs[job] = quantized(args, *job, log)
        except (FileNotFoundError, RuntimeError) as err:
            failures.append(str(err))
        if runs:
            report(args, runs)
    print(report(args, runs) if runs else 'no finished quantization')
    for failure in failures:
        print(f'error: {failure}', file=sys.stderr)
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
