"""Runner plumbing the tools share: work dirs, launchers (torchrun on CPU), distributed shutdown, evaluation."""
import copy
import os
import subprocess
import sys
from typing import Any, Callable, Dict, List, Optional, Sequence

import torch
from mmengine.config import Config


def resolve_work_dir(cfg: Config, config_path: str, work_dir: Optional[str] = None) -> str:
    """The output folder: ``work_dir`` if given, else the config's, else work_dirs/<config name>."""
    return work_dir or cfg.get('work_dir') or os.path.join(
        'work_dirs', os.path.splitext(os.path.basename(config_path))[0])


def setup_launcher(cfg: Config, launcher: str) -> None:
    """Set ``cfg.launcher``; on machines without CUDA, make ``torchrun`` work on CPU.

    MMEngine 0.10.7's pytorch launcher calls ``torch.cuda.set_device`` unconditionally. Without CUDA this
    initialises the process group with gloo from the torchrun environment instead (MMEngine then skips
    its own initialisation) and wraps the model in DDP without device ids.
    """
    cfg.launcher = launcher
    if launcher != 'pytorch' or torch.cuda.is_available():
        return
    import torch.distributed as dist
    if not dist.is_initialized():
        dist.init_process_group(backend='gloo')
    wrapper = cfg.get('model_wrapper_cfg') or dict(type='MMDistributedDataParallel', broadcast_buffers=False)
    wrapper.setdefault('device_ids', None)  # MMEngine would pass [LOCAL_RANK], a GPU index
    cfg.model_wrapper_cfg = wrapper


def shutdown_distributed(wait: bool = True) -> None:
    """Destroy the default process group, if any, once the work is done (``wait``: after every process
    reaches this point). A gloo group left to the interpreter's teardown can abort a process ('terminate
    called without an active exception') after a run that succeeded; pass ``wait=False`` on error paths,
    where another process may never arrive.

    Callers drop their runner first: a DDP wrapper's reducer holds the group (and gloo's worker threads)
    alive past ``destroy_process_group``; the garbage collection here frees such wrappers left in cycles.
    """
    import gc

    import torch.distributed as dist
    if not (dist.is_available() and dist.is_initialized()):
        return
    gc.collect()
    if wait:
        dist.barrier()
    dist.destroy_process_group()


def evaluate(cfg: Config, checkpoint: str, work_dir: str, allow_partial: bool = False) -> Dict[str, float]:
    """Run the config's test loop (its evaluator: COCO mAP, top-1...) on ``checkpoint``; returns metrics.

    The checkpoint must hold exactly the model's weights (``CheckpointMismatchError`` naming the config that
    fits, before anything runs); ``allow_partial`` loads what matches, as MMEngine's ``load_from`` does.
    """
    from mmengine.runner import Runner
    if not os.path.isfile(checkpoint):
        raise FileNotFoundError(f'checkpoint {checkpoint!r} does not exist (check the path)')
    cfg = copy.deepcopy(cfg)
    cfg.work_dir, cfg.load_from = work_dir, checkpoint
    if 'visualizer' in cfg:  # MMEngine reuses a same-named visualizer (and its log folder) in one process
        cfg.visualizer['name'] = f'visualizer:{os.path.abspath(work_dir)}'
    runner = Runner.from_cfg(cfg)
    if not allow_partial:
        _check_fits_runner_model(runner, checkpoint, 'checkpoint')
    return runner.test()


def _check_fits_runner_model(runner, path: str, setting: str) -> None:
    """``CheckpointMismatchError`` (naming ``setting`` and the config that fits) unless the checkpoint at
    ``path`` holds exactly the weights of ``runner``'s model."""
    from ..checkpoint import check_checkpoint_fits, safe_load
    from ..utils import unwrap_model
    check_checkpoint_fits(unwrap_model(runner.model).state_dict().keys(), safe_load(path, 'cpu'), path, setting)


def check_load_from(runner, cfg: Config) -> None:
    """Before training: the config's ``load_from`` checkpoint (unless resuming) must hold exactly the
    runner's model's weights; ``CheckpointMismatchError`` naming the config that fits otherwise."""
    path = cfg.get('load_from')
    if path is None or cfg.get('resume'):
        return
    if not os.path.isfile(path):
        raise FileNotFoundError(f'load_from checkpoint {path!r} does not exist: fix load_from in the config '
                                '(or --cfg-options load_from=...)')
    _check_fits_runner_model(runner, path, 'load_from')


def run_tool(script: str, argv: Sequence[Any], log: Optional[str] = None, threads: Optional[int] = None,
             cwd: Optional[str] = None) -> int:
    """Run ``python script *argv`` in a fresh process and return its exit status: how a tool (the demo, a
    study) runs another tool. ``log``: append its stdout and stderr to this file instead of the console;
    ``threads``: OMP/MKL threads of that process (one per process when several run side by side)."""
    env = dict(os.environ)
    if threads is not None:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    cmd = [sys.executable, script, *[str(a) for a in argv]]
    if log is None:
        return subprocess.call(cmd, env=env, cwd=cwd)
    with open(log, 'a') as f:
        return subprocess.call(cmd, stdout=f, stderr=subprocess.STDOUT, env=env, cwd=cwd)


def run_jobs(jobs: Sequence[Any], run: Callable[[Any, Any], Any], workers: int, desc: str,
             describe: Callable[[Any], str]) -> List[str]:
    """Call ``run(job, bar)`` for every job in order, ``workers`` at a time (threads; a job usually runs a
    tool process), under one tqdm progress bar ``bar`` (``run`` updates it). A job that raises
    RuntimeError does not stop the others; returns one message per failed job, named by ``describe(job)``."""
    from concurrent.futures import ThreadPoolExecutor

    from tqdm import tqdm
    failures = []
    with tqdm(total=len(jobs), desc=desc, unit='run') as bar, ThreadPoolExecutor(workers) as pool:
        for job, future in [(job, pool.submit(run, job, bar)) for job in jobs]:
            try:
                future.result()
            except RuntimeError as err:
                failures.append(f'{describe(job)}: {err}')
    return failures
