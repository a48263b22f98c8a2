"""Timing (the benchmark tools' library side): one interleaved timer for every comparison."""
import contextlib
import statistics
import time
from typing import Callable, Dict, Optional

import torch
from torch import nn


def _sync(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def time_interleaved(fns: Dict[str, Callable[[], object]], warmup: int = 3, iters: int = 10,
                     device: str = 'cpu') -> Dict[str, Dict[str, float]]:
    """Median wall time of each callable, run round-robin (one call each per iteration) so that drift in
    machine load or clock speed affects all of them alike and their ratios stay meaningful.

    Returns, per name, ``ms`` (median) and ``ms_min``.
    """
    device = torch.device(device)
    times = {name: [] for name in fns}
    for i in range(warmup + iters):
        for name, fn in fns.items():
            _sync(device)
            start = time.perf_counter()
            fn()
            _sync(device)
            if i >= warmup:
                times[name].append(time.perf_counter() - start)
    return {name: dict(ms=statistics.median(t) * 1e3, ms_min=min(t) * 1e3) for name, t in times.items()}


def _memory_format(channels_last: bool) -> torch.memory_format:
    return torch.channels_last if channels_last else torch.contiguous_format


AMP_DTYPES = {'bf16': torch.bfloat16, 'fp16': torch.float16}


def _autocast(device: str, amp: Optional[str]):
    """``torch.autocast`` to ``amp`` ('bf16' or 'fp16') on ``device``'s type; no autocast for None."""
    if amp is None:
        return contextlib.nullcontext()
    if amp not in AMP_DTYPES:
        raise ValueError(f"amp must be None, 'bf16' or 'fp16', got {amp!r}")
    return torch.autocast(torch.device(device).type, dtype=AMP_DTYPES[amp])


def _batch(batch_size: int, shape, device: str, channels_last: bool) -> torch.Tensor:
    return torch.randn(batch_size, 3, *shape, device=device).to(memory_format=_memory_format(channels_last))


@torch.no_grad()
def measure_latency(models: Dict[str, nn.Module], batch_size: int, shape=(224, 224), warmup: int = 3,
                    iters: int = 10, device: str = 'cpu', channels_last: bool = False,
                    amp: Optional[str] = None) -> Dict[str, Dict[str, float]]:
    """Inference time of ``model(x)`` for a (batch_size, 3, H, W) input, eval mode, per model
    (interleaved); adds ``img_per_s`` (from the median) to ``time_interleaved``'s figures. With
    ``channels_last`` the models and the input are converted to that memory format (NHWC) first; with
    ``amp`` ('bf16' or 'fp16') the forward runs under autocast to that type."""
    x = _batch(batch_size, shape, device, channels_last)

    def infer(model):
        with _autocast(device, amp):
            return model(x)
    fns = {name: (lambda m=model.eval().to(device, memory_format=_memory_format(channels_last)): infer(m))
           for name, model in models.items()}
    results = time_interleaved(fns, warmup, iters, device)
    for r in results.values():
        r['img_per_s'] = batch_size * 1e3 / r['ms']
    return results


def _timed_parts(module: nn.Module, path: str, depth: int):
    """(part, module): the modules ``depth`` levels below ``module``, or shallower leaves; a part is the
    module path with its numeric indices replaced by '*' (all blocks of a stage make one part). A
    ModuleList/ModuleDict is never called itself, so its members stand at its level."""
    children = list(module.named_children())
    if depth == 0 or not children:
        yield '.'.join('*' if name.isdigit() else name for name in path.split('.')), module
        return
    for name, child in children:
        level = depth if isinstance(child, (nn.ModuleList, nn.ModuleDict)) else depth - 1
        yield from _timed_parts(child, f'{path}.{name}' if path else name, level)


@torch.no_grad()
def latency_by_part(model: nn.Module, batch_size: int, depth: int, shape=(224, 224), warmup: int = 3,
                    iters: int = 10, device: str = 'cpu', channels_last: bool = False) -> Dict[str, Dict]:
    """Where inference time goes: per part (see ``_timed_parts``; ``depth`` levels below ``model``), the
    mean time per forward (``ms``) and the calls per forward, timed with forward hooks over ``iters``
    forwards after ``warmup``. ``'total'``: the whole forward, hooks included; the rest of it is spent in
    the parents' own operations (sums, concatenations) and the hooks themselves."""
    device = torch.device(device)
    model = model.eval().to(device, memory_format=_memory_format(channels_last))
    x = _batch(batch_size, shape, device, channels_last)
    for _ in range(warmup):
        model(x)
    totals: Dict[str, Dict] = {}
    started: Dict[int, float] = {}
    handles = []
    for part, module in _timed_parts(model, '', depth):
        entry = totals.setdefault(part, dict(ms=0.0, calls=0))

        def start(mod, args):
            _sync(device)
            started[id(mod)] = time.perf_counter()

        def stop(mod, args, output, entry=entry):
            _sync(device)
            entry['ms'] += (time.perf_counter() - started[id(mod)]) * 1e3 / iters
            entry['calls'] += 1 / iters
        handles += [module.register_forward_pre_hook(start), module.register_forward_hook(stop)]
    try:
        _sync(device)
        began = time.perf_counter()
        for _ in range(iters):
            model(x)
        _sync(device)
        totals['total'] = dict(ms=(time.perf_counter() - began) * 1e3 / iters, calls=1)
    finally:
        for handle in handles:
            handle.remove()
    return {part: entry for part, entry in totals.items() if entry['calls']}


def measure_train_step(models: Dict[str, nn.Module], batch_size: int, shape=(224, 224), warmup: int = 3,
                       iters: int = 10, device: str = 'cpu', channels_last: bool = False,
                       amp: Optional[str] = None) -> Dict[str, Dict[str, float]]:
    """Training-step time per model, interleaved: forward of a (batch_size, 3, H, W) batch, cross-entropy
    against random labels, backward, SGD step (training mode: BatchNorm batch statistics). Adds
    ``img_per_s``, and on CUDA ``peak_mib``: peak allocated memory of one step of that model alone.
    ``channels_last`` as for ``measure_latency``; with ``amp`` the forward and loss run under autocast
    ('bf16', or 'fp16' with a GradScaler, as mixed-precision training does)."""
    x = _batch(batch_size, shape, device, channels_last)
    fns = {}
    for name, model in models.items():
        model.train().to(device, memory_format=_memory_format(channels_last))
        optimizer = torch.optim.SGD(model.parameters(), lr=1e-4)
        scaler = torch.amp.GradScaler(torch.device(device).type, enabled=amp == 'fp16')

        def step(model=model, optimizer=optimizer, scaler=scaler):
            with _autocast(device, amp):
                logits = model(x)
                target = torch.randint(0, logits.shape[1], (batch_size, ), device=device)
                loss = nn.functional.cross_entropy(logits, target)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        fns[name] = step
    results = time_interleaved(fns, warmup, iters, device)
    for name, r in results.items():
        r['img_per_s'] = batch_size * 1e3 / r['ms']
        if torch.device(device).type == 'cuda':
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)
            fns[name]()
            torch.cuda.synchronize(device)
            r['peak_mib'] = torch.cuda.max_memory_allocated(device) / 2**20
    return results


def measure_distill_overhead(distiller: nn.Module, inputs: torch.Tensor, data_samples, warmup: int = 3,
                             iters: int = 10, device: str = 'cpu') -> Dict[str, Dict[str, float]]:
    """Training-step time of the student alone, of the distiller (student + teacher + distillation
    losses), and the teacher's forward alone, interleaved on the same batch.

    Adds ``overhead``: the distiller's step minus (student step + teacher forward), as a fraction of
    that sum: what distillation itself costs beyond running the teacher.
    """
    distiller.train()
    optimizer = torch.optim.SGD([p for p in distiller.parameters() if p.requires_grad], lr=1e-4)

    def train_step(loss_fn):
        losses = loss_fn(inputs, data_samples)
        total = sum(sum(v) if isinstance(v, (list, tuple)) else v for k, v in losses.items() if 'loss' in k)
        optimizer.zero_grad()
        total.backward()
        optimizer.step()

    results = time_interleaved({
        'student step': lambda: train_step(distiller.student.loss),
        'teacher forward': lambda: distiller.run_teacher(inputs),
        'distillation step': lambda: train_step(distiller.loss),
    }, warmup, iters, device)
    base = results['student step']['ms'] + results['teacher forward']['ms']
    results['overhead'] = dict(ms=results['distillation step']['ms'] - base,
                               fraction=(results['distillation step']['ms'] - base) / base)
    return results
