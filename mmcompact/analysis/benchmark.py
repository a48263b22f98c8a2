"""Inference latency / throughput measurement (the benchmark tool's library side)."""
import statistics
import time
from typing import Dict

import torch
from torch import nn


def _sync(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


@torch.no_grad()
def measure_latency(models: Dict[str, nn.Module], batch_size: int, shape=(224, 224), warmup: int = 3,
                    iters: int = 10, device: str = 'cpu') -> Dict[str, Dict[str, float]]:
    """Median wall time of ``model(x)`` for a (batch_size, 3, H, W) input, eval mode, for each model.

    The models run round-robin (one call each per iteration), so drift in machine load or clock speed
    affects all of them alike and their ratios stay meaningful. Returns, per name, ``ms`` (median per
    batch), ``ms_min`` and ``img_per_s`` (from the median).
    """
    device = torch.device(device)
    x = torch.randn(batch_size, 3, *shape, device=device)
    models = {name: model.eval().to(device) for name, model in models.items()}
    times = {name: [] for name in models}
    for i in range(warmup + iters):
        for name, model in models.items():
            _sync(device)
            start = time.perf_counter()
            model(x)
            _sync(device)
            if i >= warmup:
                times[name].append(time.perf_counter() - start)
    return {name: dict(ms=statistics.median(t) * 1e3, ms_min=min(t) * 1e3,
                       img_per_s=batch_size / statistics.median(t)) for name, t in times.items()}
