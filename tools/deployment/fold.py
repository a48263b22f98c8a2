"""Fold a trained checkpoint of any mmdet detector / mmpretrain classifier into its deploy form.

    python tools/deployment/fold.py CONFIG CHECKPOINT OUT [--shape H W] [--tolerance 1e-4] [--force]

Checks the folded model against the original on a random batch (refuses to write beyond the tolerance),
then checks that OUT loads strictly into CONFIG with deploy=True and gives the same outputs.
"""
import argparse
import sys

from mmengine.config import DictAction


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='training-form config of the model')
    parser.add_argument('checkpoint', help='trained checkpoint of that config')
    parser.add_argument('out', help='path of the deploy checkpoint to write (never the input)')
    parser.add_argument('--shape', type=int, nargs=2, default=[224, 224], metavar=('H', 'W'),
                        help='input size of the equivalence check (default 224 224)')
    parser.add_argument('--tolerance', type=float, default=1e-4,
                        help='largest max-abs output difference accepted (default 1e-4)')
    parser.add_argument('--force', action='store_true', help='replace OUT if it exists')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config keys')
    args = parser.parse_args(argv)
    if min(args.shape) < 1:
        parser.error(f'--shape {args.shape[0]} {args.shape[1]}: the check input needs a positive height and width '
                     '(e.g. --shape 224 224)')
    if not args.tolerance >= 0:
        parser.error(f'--tolerance must be a number >= 0, got {args.tolerance}')
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    import mmcompact  # noqa: F401  (registers components, safe checkpoint loading)
    from mmcompact.deploy import fold_checkpoint
    try:
        report = fold_checkpoint(args.config, args.checkpoint, args.out, shape=(2, 3, *args.shape),
                                 tolerance=args.tolerance, overwrite=args.force,
                                 cfg_options=args.cfg_options)
    except (FileNotFoundError, FileExistsError, IsADirectoryError, ValueError, KeyError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    print(f"folded {report['folded_modules']} re-parameterizable modules")
    print(f"max abs difference, folded vs original : {report['max_abs_diff']:.3e} "
          f"(tolerance {report['tolerance']:g})")
    print(f"max abs difference, deploy config load : {report['deploy_config_diff']:.3e} "
          f"(deploy=True on {', '.join(report['deploy_switches'])})")
    print(f"params: {report['params_before'] / 1e6:.3f}M -> {report['params_after'] / 1e6:.3f}M")
    print(f"wrote {report['out']}")
    return 0


if __name__ == '__main__':
    sys.exit(main())
