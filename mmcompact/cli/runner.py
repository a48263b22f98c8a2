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


def resume_checkpoint_path(work_dir: str) -> Optional[str]:
    """The checkpoint ``--resume`` (auto) continues from: the file that ``<work_dir>/last_checkpoint`` names, or
    None when the work dir has no ``last_checkpoint`` (a new run). FileNotFoundError, naming the pointer file,
    what it names and the checkpoints that are there, when it names a folder or a missing file."""
    pointer = os.path.join(work_dir, 'last_checkpoint')
    if not os.path.isfile(pointer):
        return None
    with open(pointer) as f:
        target = f.read().strip()
    if os.path.isfile(target):
        return target
    found = sorted(f for f in os.listdir(work_dir) if f.endswith('.pth'))
    what = 'a folder' if os.path.isdir(target) else 'a missing file'
    raise FileNotFoundError(
        f'{pointer} names {what}, {target!r}: checkpoints in {work_dir}: {", ".join(found) or "none"}; resume one '
        'with --resume <checkpoint>, or write its path into last_checkpoint')


def check_resume(runner, cfg: Config, path: str) -> Optional[str]:
    """Before resuming from ``path``: what MMEngine would otherwise find out mid-run, as one line.

    Returns a message (and the caller exits 0) when the run is already finished (the checkpoint is at the
    config's last epoch/iteration); raises ValueError naming ``train_cfg.max_epochs`` / ``max_iters`` when the
    checkpoint is past it, and ``CheckpointMismatchError`` naming the first key whose shape differs (or the
    missing/unexpected keys) when the model changed since the checkpoint was written (e.g. another
    ``num_classes`` or width): MMEngine would load the weights non-strictly and fail inside the optimizer; the
    same for the optimizer state (``_check_optimizer_state``).
    """
    from ..checkpoint import CheckpointMismatchError, check_checkpoint_fits, checkpoint_weights, safe_load
    from ..utils import unwrap_model
    checkpoint = safe_load(path, 'cpu')
    state = unwrap_model(runner.model).state_dict()
    check_checkpoint_fits(state.keys(), checkpoint, path, '--resume checkpoint')
    weights = checkpoint_weights(checkpoint)
    for key, value in state.items():
        saved = weights[key]
        if hasattr(saved, 'shape') and tuple(saved.shape) != tuple(value.shape):
            raise CheckpointMismatchError(
                f'--resume checkpoint {path!r} does not fit the model of this config: {key} is '
                f'{tuple(saved.shape)} in the checkpoint and {tuple(value.shape)} in the model (the config changed '
                'since it was written): train in a new work dir, or start from these weights with load_from')
    _check_optimizer_state(runner, cfg, checkpoint.get('optimizer'), path)
    meta = checkpoint.get('meta') or {}
    if 'max_epochs' in cfg.train_cfg:
        unit, key, done = 'epoch', 'max_epochs', meta.get('epoch')
    elif 'max_iters' in cfg.train_cfg:
        unit, key, done = 'iteration', 'max_iters', meta.get('iter')
    else:  # a custom loop: nothing to compare
        return None
    total = cfg.train_cfg[key]
    if done is None:
        return None
    if done > total:
        raise ValueError(f'--resume checkpoint {path!r} is at {unit} {done}, past train_cfg.{key}={total}: raise '
                         f'train_cfg.{key} to continue training, or start a new work dir')
    if done == total:
        return f'already at {unit} {done} of {total}: the run is finished (raise train_cfg.{key} to train on)'
    return None


def _check_optimizer_state(runner, cfg: Config, saved: Optional[dict], path: str) -> None:
    """``CheckpointMismatchError`` unless the optimizer state saved in ``path`` fits the optimizer this config
    builds: the same parameter groups of the same sizes, and every per-parameter state tensor (momentum, Adam's
    moments) the shape of its parameter. Optimizers torch saves in one ``state_dict`` only (an
    ``OptimWrapperDict``'s are skipped)."""
    from mmengine.optim import OptimWrapper

    from ..checkpoint import CheckpointMismatchError
    if not isinstance(saved, dict) or 'param_groups' not in saved:
        return
    wrapper = runner.build_optim_wrapper(copy.deepcopy(cfg.optim_wrapper))
    if not isinstance(wrapper, OptimWrapper):
        return
    groups = wrapper.optimizer.param_groups
    sizes, saved_sizes = [len(g['params']) for g in groups], [len(g['params']) for g in saved['param_groups']]
    if sizes != saved_sizes:
        raise CheckpointMismatchError(
            f'--resume checkpoint {path!r}: its optimizer state has parameter groups of {saved_sizes} parameters, '
            f'this config builds {sizes} (optim_wrapper or paramwise_cfg changed): train in a new work dir, or '
            'start from these weights with load_from')
    params = [p for g in groups for p in g['params']]
    ids = [i for g in saved['param_groups'] for i in g['params']]
    for index, param in zip(ids, params):
        for name, value in saved.get('state', {}).get(index, {}).items():
            if isinstance(value, torch.Tensor) and value.dim() > 0 and tuple(value.shape) != tuple(param.shape):
                raise CheckpointMismatchError(
                    f'--resume checkpoint {path!r}: optimizer state {name!r} of parameter {index} is '
                    f'{tuple(value.shape)}, the parameter is {tuple(param.shape)} (the optimizer changed since '
                    'it was written): train in a new work dir, or start from these weights with load_from')


FINISHED_MARKER = 'train_finished.json'


def finished_metric(run_dir: str, metric: str) -> Optional[float]:
    """The final ``metric`` of a training run that ``train_or_reuse`` saw finish (``run_dir`` holds its
    ``FINISHED_MARKER``), else None. A logged metric alone does not mean finished: a run killed after an
    intermediate validation has logged one."""
    import json
    path = os.path.join(run_dir, FINISHED_MARKER)
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        return json.load(f).get(metric)


def train_or_reuse(train_script: str, config: str, run_dir: str, metric: str,
                   options: Optional[Dict[str, Any]] = None, threads: Optional[int] = None, log: Optional[str] = None,
                   report_only: bool = False, missing_metric: Optional[float] = None) -> Optional[float]:
    """The final ``metric`` of the training run in ``run_dir``: how every study and the predictor calibration
    run their trainings. A finished run (``finished_metric``) is reused; an interrupted one (it has a
    ``last_checkpoint``) resumes; otherwise ``train_script`` (tools/train.py) ``config --work-dir run_dir
    --cfg-options options`` trains it in a new process (``threads`` OMP threads, output appended to ``log``,
    default ``run_dir/train.log``). When the process succeeds, the run's last logged ``metric`` is written to
    its ``FINISHED_MARKER``. ``report_only``: never train, None for a run that has not finished. RuntimeError
    (naming the log) when the training fails, or when it logs no metric and ``missing_metric`` (the score of
    such a run, e.g. 0 for a detector that detected nothing) is None."""
    import json

    from ..analysis import final_metric
    from ..checkpoint import atomic_file
    score = finished_metric(run_dir, metric)
    if score is not None or report_only:
        return score
    os.makedirs(run_dir, exist_ok=True)
    argv = [config, '--work-dir', run_dir]
    if options:
        argv += ['--cfg-options'] + [f'{k}={v}' for k, v in options.items()]
    if os.path.isfile(os.path.join(run_dir, 'last_checkpoint')):
        argv.append('--resume')
    log = log or os.path.join(run_dir, 'train.log')
    code = run_tool(train_script, argv, log=log, threads=threads)
    score = final_metric(run_dir, metric)
    if not code and score is None:
        score = missing_metric
    if code or score is None:
        raise RuntimeError(f'training in {run_dir} failed (exit {code}' + (', no ' + metric if not code else '')
                           + f'): see {log}')
    with atomic_file(os.path.join(run_dir, FINISHED_MARKER), 'w') as f:
        json.dump({metric: score}, f)
    return score
