"""Export the student of a distillation checkpoint: student.pth (loads strictly into the plain student
config) and, when it has re-parameterizable modules, student_deploy.pth (its deploy config), checked.

    python tools/deployment/export_student.py CONFIG CHECKPOINT OUT_DIR [--no-ema] [--no-fold] [--shape H W] [--force]
"""
import argparse
import sys


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='the distillation config')
    parser.add_argument('checkpoint', help='a checkpoint the runner wrote for it')
    parser.add_argument('out_dir')
    parser.add_argument('--no-ema', action='store_true',
                        help='export the raw weights instead of the EMA weights (when EMA was on)')
    parser.add_argument('--no-fold', action='store_true', help='do not write the folded student')
    parser.add_argument('--shape', type=int, nargs=2, default=[224, 224], metavar=('H', 'W'),
                        help='input size of the fold check')
    parser.add_argument('--force', action='store_true', help='replace existing files in OUT_DIR')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    import mmcompact  # noqa: F401
    from mmcompact.checkpoint import safe_load
    from mmcompact.distill import distiller_checkpoint_state, export_student
    from mmcompact.utils import build_model, load_config
    try:
        # The teacher's weights play no part in the export: skip loading them.
        cfg = load_config(args.config, {'model.teacher_checkpoint': None})
        if cfg.model.get('type') not in ('mmcompact.Distiller', 'Distiller'):
            raise ValueError(f'{args.config} is not a distillation config (model.type is '
                             f"{cfg.model.get('type')!r}, expected 'mmcompact.Distiller')")
        distiller = build_model(cfg)
        state = distiller_checkpoint_state(safe_load(args.checkpoint, map_location='cpu'), not args.no_ema)
        report = export_student(distiller, state, args.out_dir, fold=not args.no_fold,
                                check_shape=(1, 3, *args.shape), overwrite=args.force)
    except (FileNotFoundError, FileExistsError, KeyError, ValueError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    print(f"wrote {report['student']}")
    if 'deploy' in report:
        print(f"wrote {report['deploy']} (folded, max abs difference {report['fold_diff']:.2e})")
    return 0


if __name__ == '__main__':
    sys.exit(main())
