"""Prepare Fashion-MNIST for mmpretrain's FashionMNIST dataset (configs/_base_/datasets/fashion_mnist.py).

    python tools/misc/prepare_fashion_mnist.py [--src /usr/share/datasets/fashion-mnist] [--out data/fashion_mnist]

Checks the four original .gz files against mmpretrain's md5 list and unpacks them into --out. The files come
from the Debian package dataset-fashion-mnist (`make install` installs it where apt is usable).
"""
import argparse
import sys


def main(argv=None) -> int:
    from mmcompact.data.fashion_mnist import DEBIAN_DIR
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--src', default=DEBIAN_DIR, help=f'folder of the four .gz files (default {DEBIAN_DIR})')
    parser.add_argument('--out', default='data/fashion_mnist', help='data_root to write (default data/fashion_mnist)')
    args = parser.parse_args(argv)
    from mmcompact.data import prepare_fashion_mnist
    try:
        paths = prepare_fashion_mnist(args.src, args.out)
    except (FileNotFoundError, ValueError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    print(f'Fashion-MNIST ready in {args.out} ({len(paths)} files, md5 checked)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
