"""Convert an official GhostNetV3 release file or a timm ghostnetv3_* state dict to mmcompact.

    python tools/model_converters/convert_ghostnetv3.py SRC OUT [--no-ema] [--force]

The output loads strictly into configs/ghostnetv3/ghostnetv3-<width>x_8xb128_in1k.py (training form) and,
through init_cfg=dict(type='Pretrained', checkpoint=OUT, prefix='backbone.'), into detector backbones.
"""
import argparse
import sys


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('src', help='official .pth.tar or timm state dict (.pth)')
    parser.add_argument('out', help='mmcompact checkpoint to write')
    parser.add_argument('--no-ema', action='store_true',
                        help="convert 'state_dict' instead of 'state_dict_ema' (official files)")
    parser.add_argument('--force', action='store_true', help='replace OUT if it exists')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    import mmcompact  # noqa: F401
    from mmcompact.models import convert_and_verify_ghostnetv3
    try:
        report = convert_and_verify_ghostnetv3(args.src, args.out, use_ema=not args.no_ema,
                                               overwrite=args.force)
    except (FileNotFoundError, FileExistsError, KeyError, ValueError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    print(f"converted {report['num_keys']} tensors ({report['form']} form, width {report['width']}x, "
          f"{report['num_classes']} classes); loads strictly into {report['config_hint']}")
    print(f"wrote {report['out']}")
    return 0


if __name__ == '__main__':
    sys.exit(main())
