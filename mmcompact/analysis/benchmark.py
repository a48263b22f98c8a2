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
def measure_latency(model: nn.Module, batch_size: int, shape=(224, 224), warmup: int = 3,
                    iters: int = 10, device: str = 'cpu') -> Dict[str, float]:
    """Median wall time of ``model(x)`` for a (batch_size, 3, H, W) input, in eval mode.

    Returns ``ms`` (median per batch), ``ms_min`` and ``img_per_s`` (from the median).
    """
    device = torch.device(device)
    model = model.eval().to(device)
    x = torch.randn(batch_size, 3, *shape, device=device)
    for _ in range(warmup):
        model(x)
    _sync(device)
    times = []
    for _ in range(iters):
        start = time.perf_counter()
        model(x)
        _sync(device)
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    return dict(ms=median * 1e3, ms_min=min(times) * 1e3, img_per_s=batch_size / median)
