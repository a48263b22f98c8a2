"""Inference latency and training throughput of a config, training form vs folded, against timm.

    python tools/analysis_tools/benchmark.py CONFIG [--batch-sizes 1 16] [--shape 224 224] [--iters 20]
                             [--timm ghostnetv3_100] [--device cpu|cuda] [--amp bf16] [--channels-last]
                             [--repeats 10]
    python tools/analysis_tools/benchmark.py CONFIG --train [--batch-sizes 16] [--bounds ghostnet_100 mobilenetv2_100]
    python tools/analysis_tools/benchmark.py CONFIG --breakdown 5 [--batch-sizes 1]

Inference: mmcompact's training form and folded form against timm's reparameterized model (the reference).
--train: training steps (forward, cross-entropy, backward, SGD step; img/s, and peak memory on CUDA) of
mmcompact's training form (with and without the fused path of 1x1 branches) and folded form, timm's
training form (the reference) and folded form, and plain timm models without re-parameterization
(--bounds) as the bound. All figures are measured in this process
with the same input, the models taking turns call by call (so load drift hits all alike); every figure is
printed with its ratio to the reference. timm is optional (--timm none to skip).
--breakdown DEPTH: where the inference time goes instead, per part of mmcompact's training form and folded
form (modules DEPTH levels below the model, e.g. 5 for a classifier's backbone.stages.*.*.ghost1.dfc),
at the first batch size.
"""
import argparse
import copy
import sys


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('--train', action='store_true', help='training throughput instead of inference')
    parser.add_argument('--batch-sizes', type=int, nargs='+', help='default: 1 16 (inference), 16 (--train)')
    parser.add_argument('--shape', type=int, nargs=2, default=[224, 224], metavar=('H', 'W'))
    parser.add_argument('--iters', type=int, default=20, help='timed iterations (median reported)')
    parser.add_argument('--warmup', type=int, default=5)
    parser.add_argument('--timm', default='ghostnetv3_100', help="timm reference model (or 'none')")
    parser.add_argument('--bounds', nargs='*', default=['ghostnet_100', 'mobilenetv2_100'],
                        help='--train: plain timm models (no re-parameterization) shown as the bound')
    parser.add_argument('--channels-last', action='store_true',
                        help='every model and the input in channels_last (NHWC) memory format')
    parser.add_argument('--amp', choices=['bf16', 'fp16'],
                        help='autocast forward (and loss) to this type (fp16 training with a GradScaler)')
    parser.add_argument('--repeats', type=int, default=1,
                        help='repeat the whole measurement and print the spread (min/median/max) of the ratios')
    parser.add_argument('--breakdown', type=int, metavar='DEPTH',
                        help='inference time per part (modules DEPTH levels below the model) instead')
    parser.add_argument('--device', default=None, help='cpu or cuda (default: cuda when available)')
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f'--repeats must be at least 1, got {args.repeats}')
    if min(args.shape) < 1 or args.iters < 1 or args.warmup < 0 or min(args.batch_sizes or [1]) < 1:
        parser.error(f'--shape {args.shape[0]} {args.shape[1]}, --batch-sizes, --iters must be positive '
                     '(e.g. --shape 224 224)')
    return args


def print_breakdown(models, args, batch_size, device) -> int:
    import torch

    from mmcompact.analysis import format_table, latency_by_part
    parts = {name: latency_by_part(model, batch_size, args.breakdown, args.shape, args.warmup, args.iters,
                                   device, args.channels_last) for name, model in models.items()}
    names = list(parts)
    order = sorted({p for r in parts.values() for p in r if p != 'total'},
                   key=lambda p: -parts[names[-1]].get(p, dict(ms=0))['ms'])
    rows = [['part', 'calls'] + [f'{name} {unit}' for name in names for unit in ('ms', '%')]]
    for part in order + ['total']:
        found = [parts[name].get(part) for name in names]
        calls = next(f"{r['calls']:.0f}" for r in found if r)
        row = [part, calls]
        for name, r in zip(names, found):
            row += [f"{r['ms']:.2f}", f"{100 * r['ms'] / parts[name]['total']['ms']:.0f}"] if r else ['-', '-']
        rows.append(row)
    print(f'inference time per part (forward hooks, mean of {args.iters} forwards); device {device}, threads '
          f'{torch.get_num_threads()}, batch {batch_size}, input {args.shape[0]}x{args.shape[1]}'
          f"{' channels_last' if args.channels_last else ''}; the total's rest is the parents' own operations")
    print(format_table(rows, total_row=False))
    return 0


def add_timm_references(models: dict, args):
    """Add timm's models of --timm (train form with --train, folded) and --bounds to ``models``; returns the
    name of the reference model the ratios are against (None without timm)."""
    import copy
    if args.timm == 'none':
        return None
    try:
        import timm
        from timm.utils.model import reparameterize_model as timm_reparameterize
    except ImportError:
        print('timm is not installed: no reference figures (pip install timm==1.0.31)', file=sys.stderr)
        return None
    timm_model = timm.create_model(args.timm).eval()
    reference = None
    if args.train:
        reference = f'timm {args.timm} train form'
        models[reference] = timm_model
    models[f'timm {args.timm} folded'] = timm_reparameterize(copy.deepcopy(timm_model))
    for name in args.bounds if args.train else []:
        models[f'timm {name} (no re-param)'] = timm.create_model(name)
    return reference or f'timm {args.timm} folded'


def result_rows(models: dict, results: dict, batch_sizes: list, reference, memory: bool) -> list:
    """The table: per model and batch size, ms, img/s and (with a reference) the ratio; peak memory on CUDA."""
    header = ['model']
    for bs in batch_sizes:
        header += [f'bs{bs} ms', f'bs{bs} img/s'] + ([f'bs{bs} x ref'] if reference else [])
        header += [f'bs{bs} peak MiB', f'bs{bs} mem x ref'] if memory and reference else []
    rows = [header]
    for name in models:
        row = [name]
        for bs in batch_sizes:
            r, ref = results[bs][name], results[bs].get(reference)
            row += [f"{r['ms']:.1f}", f"{r['img_per_s']:.1f}"]
            row += [f"{r['img_per_s'] / ref['img_per_s']:.2f}"] if ref else []
            row += [f"{r['peak_mib']:.0f}", f"{r['peak_mib'] / ref['peak_mib']:.2f}"] if memory and ref else []
        rows.append(row)
    return rows


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch

    import mmcompact  # noqa: F401
    from mmcompact.analysis import format_table, measure_latency, measure_train_step
    from mmcompact.reparam import reparameterize_model, set_moment_fusion
    from mmcompact.utils import build_model, load_config
    device = args.device or ('cuda' if torch.cuda.is_available() else 'cpu')
    batch_sizes = args.batch_sizes or ([16] if args.train else [1, 16])
    try:
        model = build_model(load_config(args.config))
        model.eval()
    except (FileNotFoundError, KeyError, ValueError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    models = {'mmcompact train form': model}
    if args.train:  # the same model without the fused training path of 1x1 branches
        separate = copy.deepcopy(model)
        if set_moment_fusion(separate, False):
            models['mmcompact train form, moment_fusion=False'] = separate
    models['mmcompact folded'] = reparameterize_model(copy.deepcopy(model))
    if args.breakdown is not None:
        return print_breakdown(models, args, batch_sizes[0], device)
    reference = add_timm_references(models, args)
    what = 'training step (fwd+bwd+SGD)' if args.train else 'inference'
    layout = 'channels_last' if args.channels_last else 'contiguous (NCHW)'
    print(f'{what}; device {device}, threads {torch.get_num_threads()}, torch {torch.__version__}, '
          f'input {args.shape[0]}x{args.shape[1]} {layout}, {args.amp or "float32"}, median of {args.iters} '
          'interleaved runs')
    measure = measure_train_step if args.train else measure_latency

    def measure_all():
        return {bs: measure(models, bs, args.shape, args.warmup, args.iters, device, args.channels_last, args.amp)
                for bs in batch_sizes}
    results = measure_all()
    memory = args.train and device.startswith('cuda')
    rows = result_rows(models, results, batch_sizes, reference, memory)
    print(format_table(rows, total_row=False))
    if reference:
        print(f'x ref: throughput (and memory) relative to {reference}')
    if reference and args.repeats > 1:
        repeats = [results] + [measure_all() for _ in range(args.repeats - 1)]
        print_ratio_spread(models, reference, batch_sizes, repeats)
    return 0


def print_ratio_spread(models, reference, batch_sizes, runs) -> None:
    """Print each model's throughput ratio to ``reference`` as min/median/max over ``runs`` (repeats of the
    whole measurement)."""
    import statistics

    from mmcompact.analysis import format_table
    ratios = {(name, bs): [] for name in models for bs in batch_sizes}
    for run in runs:
        for (name, bs), values in ratios.items():
            values.append(run[bs][name]['img_per_s'] / run[bs][reference]['img_per_s'])
    rows = [['model'] + [f'bs{bs} x ref {what}' for bs in batch_sizes for what in ('min', 'median', 'max')]]
    for name in models:
        rows.append([name] + [f'{f(ratios[name, bs]):.2f}' for bs in batch_sizes
                              for f in (min, statistics.median, max)])
    print(f'throughput relative to {reference} over {len(runs)} repeats of the whole measurement:')
    print(format_table(rows, total_row=False))


if __name__ == '__main__':
    sys.exit(main())
