"""Params and FLOPs of a model config, training form and deploy form side by side, per part.

    python tools/analysis_tools/flops.py CONFIG [--shape H W] [--deploy]

FLOPs are multiply-accumulates (MACs) of conv and linear layers, as in the GhostNetV3 paper and mmdet's
get_flops. The deploy form is the training form folded (same as building the config with deploy=True).
"""
import argparse
import sys

from mmengine.config import DictAction


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('--shape', type=int, nargs=2, default=[224, 224], metavar=('H', 'W'),
                        help='input size (default 224 224)')
    parser.add_argument('--deploy', action='store_true',
                        help='count only the deploy form (the config with deploy=True)')
    parser.add_argument('--parts', nargs='*', default=None,
                        help='module paths to break down by (default: top-level parts and backbone stages)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config keys')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    import mmcompact  # noqa: F401
    from mmcompact.analysis import complexity_table, count_complexity, format_table, train_and_deploy_complexity
    from mmcompact.deploy import deploy_config
    from mmcompact.reparam import deploy_form
    from mmcompact.utils import build_model, load_config
    try:
        cfg = load_config(args.config, args.cfg_options)
        shape = (1, 3, *args.shape)
        if args.deploy:
            cfg, _ = deploy_config(cfg)
            # the deploy config builds the folded structure; deploy_form also fuses its plain conv+BN pairs,
            # so both paths count the one deploy form (reparam.deploy_form)
            rows = complexity_table(count_complexity(deploy_form(build_model(cfg)), shape, args.parts))
            rows[0] = [rows[0][0], 'params (deploy)', 'MACs (deploy)']
        else:
            rows = complexity_table(*train_and_deploy_complexity(build_model(cfg), shape, args.parts))
    except (FileNotFoundError, KeyError, ValueError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    print(f'{args.config} @ {args.shape[0]}x{args.shape[1]} (FLOPs = multiply-accumulates, MACs)')
    print(format_table(rows))
    return 0


if __name__ == '__main__':
    sys.exit(main())
