"""Generate a deterministic synthetic dataset in a real format.

    python tools/misc/make_synthetic.py det OUT_DIR [--num-train 200] [--num-val 50] [--classes 6] [--seed 0]
                                   [--min-size 256] [--max-size 512] [--max-objects 6] [--no-clutter] [--force]
                                   [--fashion-mnist FOLDER]
    python tools/misc/make_synthetic.py cls OUT_DIR [--num-train 600] [--num-val 120] [--classes 6] [--size 64]
                                   [--family-size 1] [--mark-scale 0.2] [--no-clutter]

det: COCO format (OUT_DIR/{train,val}/*.png, OUT_DIR/annotations/instances_{train,val}.json), for mmdet's
CocoDataset and CocoMetric; with --fashion-mnist the objects are Fashion-MNIST items (train items in train/,
test items in val/) instead of shapes, and the categories their class names. cls: mmpretrain CustomDataset
layout (OUT_DIR/{train,val}/<class>/*.png).
"""
import argparse
import os
import sys


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('kind', choices=['det', 'cls'])
    parser.add_argument('out_dir')
    parser.add_argument('--num-train', type=int, default=None)
    parser.add_argument('--num-val', type=int, default=None)
    parser.add_argument('--classes', type=int, default=6)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--min-size', type=int, default=256, help='det: smallest image side')
    parser.add_argument('--max-size', type=int, default=512, help='det: largest image side')
    parser.add_argument('--size', type=int, default=64, help='cls: image side')
    parser.add_argument('--family-size', type=int, default=1,
                        help='cls: classes in families of this many that share a shape and differ by a small '
                             'mark (class-similarity structure); --classes may then be up to 8 * this')
    parser.add_argument('--mark-scale', type=float, default=0.2,
                        help="cls with --family-size > 1: the mark's radius as a fraction of the shape's inner "
                             'radius (larger: an easier task)')
    parser.add_argument('--max-objects', type=int, default=6, help='det: objects per image: 1 to this many')
    parser.add_argument('--no-clutter', action='store_true',
                        help='an easier task: plain backgrounds; cls: no distractor shape, mild aspect ratios; '
                             'det: objects of at least 20%% of the image side')
    parser.add_argument('--fashion-mnist', metavar='FOLDER',
                        help='det: draw Fashion-MNIST items from FOLDER (prepared data/fashion_mnist, or the '
                             'original .gz files, e.g. /usr/share/datasets/fashion-mnist) instead of shapes')
    parser.add_argument('--force', action='store_true', help='write into a non-empty OUT_DIR')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from tqdm import tqdm

    from mmcompact.checkpoint import atomic_directory
    from mmcompact.data import make_classification, make_coco_detection
    if os.path.exists(args.out_dir) and not (os.path.isdir(args.out_dir) and not os.listdir(args.out_dir)) \
            and not args.force:
        print(f'error: {args.out_dir} exists and is not empty; choose another folder or pass --force (which '
              'replaces it whole)', file=sys.stderr)
        return 1
    defaults = (200, 50) if args.kind == 'det' else (600, 120)
    num_train = defaults[0] if args.num_train is None else args.num_train
    num_val = defaults[1] if args.num_val is None else args.num_val
    if num_train < 1 or num_val < 1 or args.min_size > args.max_size or min(args.min_size, args.size) < 32 \
            or args.max_objects < 1:
        print('error: --num-train/--num-val/--max-objects must be >= 1 and image sizes >= 32 with --min-size <= '
              '--max-size', file=sys.stderr)
        return 1
    if args.fashion_mnist and args.kind != 'det':
        print('error: --fashion-mnist draws detection objects: use it with `det`', file=sys.stderr)
        return 1
    try:  # written into a staging folder that replaces OUT_DIR whole only once complete
        with atomic_directory(args.out_dir, replace=args.force) as staging, \
                tqdm(total=num_train + num_val, desc=f'synthetic {args.kind}', unit='img') as bar:
            if args.kind == 'det':
                make_coco_detection(staging, num_train, num_val, args.classes, args.seed,
                                    (args.min_size, args.max_size), progress=bar.update,
                                    max_objects=args.max_objects, clutter=not args.no_clutter,
                                    fashion_mnist=args.fashion_mnist)
            else:
                make_classification(staging, num_train, num_val, args.classes, args.seed, args.size,
                                    progress=bar.update, family_size=args.family_size,
                                    clutter=not args.no_clutter, mark_scale=args.mark_scale)
    except (ValueError, FileExistsError, FileNotFoundError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    print(f'wrote {num_train} train + {num_val} val images to {args.out_dir}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
