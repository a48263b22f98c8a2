"""Inference latency of a config in training form vs folded form, against timm's ghostnetv3.

    python tools/benchmark.py CONFIG [--batch-sizes 1 16] [--shape 224 224] [--iters 20]
                             [--timm ghostnetv3_100] [--device cpu|cuda]

All figures are measured in this process with the same input, the models taking turns call by call (so
load drift hits all alike); ratios are relative to timm's reparameterized model (the reference).
timm is optional (--timm none to skip).
"""
import argparse
import copy
import sys


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('--batch-sizes', type=int, nargs='+', default=[1, 16])
    parser.add_argument('--shape', type=int, nargs=2, default=[224, 224], metavar=('H', 'W'))
    parser.add_argument('--iters', type=int, default=20, help='timed iterations (median reported)')
    parser.add_argument('--warmup', type=int, default=5)
    parser.add_argument('--timm', default='ghostnetv3_100',
                        help="timm reference model, reparameterized (or 'none')")
    parser.add_argument('--device', default=None, help='cpu or cuda (default: cuda when available)')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch

    import mmcompact  # noqa: F401
    from mmcompact.analysis import format_table, measure_latency
    from mmcompact.apis import build_model, load_config
    from mmcompact.reparam import reparameterize_model
    device = args.device or ('cuda' if torch.cuda.is_available() else 'cpu')
    try:
        model = build_model(load_config(args.config)).eval()
    except (FileNotFoundError, KeyError, ValueError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    models = {'mmcompact train form': model,
              'mmcompact folded': reparameterize_model(copy.deepcopy(model))}
    reference = None
    if args.timm != 'none':
        try:
            import timm
            from timm.utils.model import reparameterize_model as timm_reparameterize
        except ImportError:
            print('timm is not installed: no reference figures (pip install timm==1.0.31)',
                  file=sys.stderr)
        else:
            reference = f'timm {args.timm} folded'
            models[reference] = timm_reparameterize(timm.create_model(args.timm).eval())
    print(f'device {device}, threads {torch.get_num_threads()}, torch {torch.__version__}, '
          f'input {args.shape[0]}x{args.shape[1]}, median of {args.iters} interleaved runs')
    header = ['model']
    for bs in args.batch_sizes:
        header += [f'bs{bs} ms', f'bs{bs} img/s'] + ([f'bs{bs} x ref'] if reference else [])
    results = {bs: measure_latency(models, bs, args.shape, args.warmup, args.iters, device)
               for bs in args.batch_sizes}
    rows = [header]
    for name in models:
        row = [name]
        for bs in args.batch_sizes:
            r = results[bs][name]
            row += [f"{r['ms']:.1f}", f"{r['img_per_s']:.1f}"]
            if reference:
                row.append(f"{r['img_per_s'] / results[bs][reference]['img_per_s']:.2f}")
        rows.append(row)
    print(format_table(rows, total_row=False))
    return 0


if __name__ == '__main__':
    sys.exit(main())
