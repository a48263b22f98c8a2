"""Optimizer wrappers: ``NonFiniteGuardOptimWrapper`` never applies a step whose loss is NaN/Inf."""
from contextlib import contextmanager
from typing import Dict, List, Optional, Tuple

import torch
from mmengine.dist import all_reduce
from mmengine.optim import OptimWrapper
from torch import nn

from ..registry import OPTIM_WRAPPERS


@OPTIM_WRAPPERS.register_module()
class NonFiniteGuardOptimWrapper(OptimWrapper):
    """An ``OptimWrapper`` that never applies a step whose loss is not finite.

    ``optim_context`` (entered by ``train_step`` before the forward) keeps a copy of the model's buffers; an
    ``update_params`` whose loss is NaN/Inf on any rank runs the backward (so DDP's collectives stay in
    step), drops the gradients (including any accumulated for this step) and puts the buffers (BatchNorm
    running statistics and counters, which the forward already moved) back. ``skipped_last`` says whether
    the last call skipped; ``mmcompact.NonFiniteLossHook`` reports, counts and limits the skips.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.skipped_last = False
        self._buffers: Optional[List[Tuple[torch.Tensor, torch.Tensor]]] = None

    @contextmanager
    def optim_context(self, model: nn.Module):
        self._buffers = [(b, b.detach().clone()) for b in model.buffers()]
        with super().optim_context(model):
            yield

    def update_params(self, loss: torch.Tensor, step_kwargs: Optional[Dict] = None,
                      zero_kwargs: Optional[Dict] = None) -> None:
        bad = torch.tensor(float(not torch.isfinite(loss.detach()).all()), device=loss.device)
        all_reduce(bad, op='max')  # every rank skips the same steps (no-op in one process)
        self.skipped_last = bool(bad)
        if not self.skipped_last:
            super().update_params(loss, step_kwargs=step_kwargs, zero_kwargs=zero_kwargs)
            return
        self.backward(self.scale_loss(loss))
        self.zero_grad(**(zero_kwargs or {}))
        with torch.no_grad():
            for buffer, saved in self._buffers or ():
                buffer.copy_(saved)
