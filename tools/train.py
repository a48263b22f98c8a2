"""Train any mmcompact / mmdet / mmpretrain config with the MMEngine runner.

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp] [--cfg-options k=v ...]
    torchrun --nproc_per_node=N tools/train.py CONFIG --launcher pytorch
"""
import argparse
import os
import os.path as osp
import sys

from mmengine.config import DictAction


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('--work-dir', help='output folder (default: work_dirs/<config name>)')
    parser.add_argument('--resume', nargs='?', const='auto',
                        help='resume from CKPT, or from the latest checkpoint in the work dir')
    parser.add_argument('--amp', action='store_true', help='automatic mixed precision')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config keys')
    parser.add_argument('--no-data-check', action='store_true',
                        help='skip the check of the COCO annotation files before training (large files)')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    from mmengine.runner import Runner

    import mmcompact  # noqa: F401  (registers components, safe checkpoint loading)
    from mmcompact.checkpoint import CheckpointLoadError
    from mmcompact.cli import (check_load_from, check_resume, resolve_work_dir, resume_checkpoint_path, setup_launcher,
                               shutdown_distributed)
    from mmcompact.data import CocoFormatError, check_coco_datasets
    from mmcompact.utils import load_config
    try:
        cfg = load_config(args.config, args.cfg_options)
        if not args.no_data_check:  # malformed annotations: one clear error now, not a crash mid-run
            check_coco_datasets(cfg, ('train', 'val') if cfg.get('val_cfg') else ('train',))
    except (FileNotFoundError, KeyError, CocoFormatError, SyntaxError, ValueError) as err:
        print(f'error: {config_error(err, args.config)}', file=sys.stderr)
        return 1
    setup_launcher(cfg, args.launcher)
    cfg.work_dir = resolve_work_dir(cfg, args.config, args.work_dir)
    if 'visualizer' in cfg:  # MMEngine reuses a same-named visualizer (and its log folder) in one process
        cfg.visualizer['name'] = f'visualizer:{osp.abspath(cfg.work_dir)}'
    if args.amp:
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    if args.resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif args.resume is not None:
        cfg.resume, cfg.load_from = True, args.resume
    if args.resume not in (None, 'auto') and not osp.isfile(args.resume):
        print(f'error: --resume checkpoint {args.resume!r} does not exist', file=sys.stderr)
        return 1
    try:  # build everything the run needs first, so that a config error is one line, before any training
        runner = Runner.from_cfg(cfg)
        runner.train_loop  # noqa: B018 (builds the loop: a wrong train_cfg key fails here)
        check_load_from(runner, cfg)
        resume_from = args.resume if args.resume not in (None, 'auto') else \
            resume_checkpoint_path(cfg.work_dir) if args.resume == 'auto' else None
        finished = resume_from and check_resume(runner, cfg, resume_from)
    except (KeyError, TypeError, ValueError, FileNotFoundError, CheckpointLoadError) as err:
        shutdown_distributed(wait=False)
        print(f'error: {config_error(err, args.config)}', file=sys.stderr)
        return 1
    if finished:
        print(f'{resume_from}: {finished}')
        del runner
        shutdown_distributed()
        return 0
    try:
        runner.train()
    except (CheckpointLoadError, FloatingPointError) as err:  # refused checkpoint, NonFiniteLossHook stop
        shutdown_distributed(wait=False)
        print(f'error: {err}', file=sys.stderr)
        return 1
    del runner  # its DDP wrapper holds the process group: free it before the group is destroyed
    shutdown_distributed()
    return 0


def config_error(err: Exception, config: str) -> str:
    """One line naming what is wrong with the config or its inputs and where to fix it."""
    text = str(err).strip().strip('"').splitlines()[0] if str(err).strip() else type(err).__name__
    if isinstance(err, SyntaxError):
        return f'{config} is not valid Python (line {err.lineno}): {err.msg}'
    if isinstance(err, TypeError) and 'unexpected keyword argument' in text:
        return f'{text}: a config key has no such argument; check its spelling in {config} or --cfg-options'
    if isinstance(err, KeyError) and 'not in the' in text and 'registry' in text:
        return f'{text}: check the type name in {config} (and custom_imports for other packages)'
    return text


if __name__ == '__main__':
    sys.exit(main())
