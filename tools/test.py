"""Evaluate a checkpoint of any mmcompact / mmdet / mmpretrain config with the MMEngine runner
(COCO mAP through pycocotools for detectors, top-1/top-5 for classifiers, as the config's evaluator says).

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--allow-partial] [--cfg-options k=v ...]

The checkpoint must hold exactly the config's model weights: a folded checkpoint with the training config,
a training checkpoint with a deploy config or another model's weights is an error that says which config
fits (``--allow-partial`` loads whatever matches, as MMEngine's load_from does).
"""
import argparse
import os
import sys

from mmengine.config import DictAction


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--work-dir', help='output folder (default: work_dirs/<config name>)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config keys')
    parser.add_argument('--allow-partial', action='store_true',
                        help='evaluate even if the checkpoint lacks some of the model weights or has others')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    import mmcompact  # noqa: F401
    from mmcompact.checkpoint import CheckpointLoadError
    from mmcompact.cli import evaluate, resolve_work_dir, setup_launcher, shutdown_distributed
    from mmcompact.data import CocoFormatError, check_coco_datasets
    from mmcompact.utils import load_config
    try:
        cfg = load_config(args.config, args.cfg_options)
        check_coco_datasets(cfg, ('test',))
        setup_launcher(cfg, args.launcher)
        metrics = evaluate(cfg, args.checkpoint, resolve_work_dir(cfg, args.config, args.work_dir),
                           allow_partial=args.allow_partial)
    except (FileNotFoundError, KeyError, CheckpointLoadError, CocoFormatError) as err:
        shutdown_distributed(wait=False)
        print(f'error: {err}', file=sys.stderr)
        return 1
    shutdown_distributed()
    print(' '.join(f'{k}: {v:.4f}' if isinstance(v, float) else f'{k}: {v}' for k, v in metrics.items()))
    return 0


if __name__ == '__main__':
    sys.exit(main())
