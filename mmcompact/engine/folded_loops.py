"""Validation and test loops that evaluate the folded (deploy) form of a re-parameterized model, and the
checked fold they share with ``DeployHook``."""
from typing import Optional, Sequence

import torch
from mmengine.runner import TestLoop, ValLoop, autocast
from mmengine.runner.loops import _update_losses  # the stock loops' own bookkeeping of val/test losses
from torch import nn

from ..deploy import fold_checked
from ..registry import LOOPS
from ..utils import random_inputs, unwrap_model


def fold_and_log_check(runner, model: nn.Module, check_shape: Sequence[int], tolerance: float,
                        setting: str) -> nn.Module:
    """``fold_checked`` on a random input of ``check_shape``; the check is logged."""
    device = next(model.parameters()).device
    folded, check = fold_checked(model, random_inputs(check_shape).to(device), tolerance, setting)
    runner.logger.info(f'{setting.split(".")[0]}: folded model matches the training form (max abs diff '
                       f"{check['max_abs_diff']:.2e})")
    return folded


class FoldedEvaluation:
    """What ``FoldedValLoop`` and ``FoldedTestLoop`` share (mixed in before MMEngine's loop): at the first
    batch of every run (after the epoch's hooks, so EMAHook has swapped its weights in) the runner's model is
    folded and checked on a random batch of ``check_shape`` (``tolerance``), and that folded copy (the
    deploy form users ship) answers the ``<stage>_step`` calls; it is dropped when the run ends."""
    stage = ''  # 'val' or 'test'

    def __init__(self, runner, dataloader, evaluator, fp16: bool = False,
                 check_shape: Sequence[int] = (2, 3, 224, 224), tolerance: float = 1e-4):
        super().__init__(runner, dataloader, evaluator, fp16)
        self.check_shape, self.tolerance = tuple(check_shape), tolerance
        self.folded: Optional[nn.Module] = None

    def run(self) -> dict:
        try:
            return super().run()
        finally:
            self.folded = None

    @torch.no_grad()
    def run_iter(self, idx, data_batch: Sequence[dict]) -> None:
        """The stock loop's iteration, with the folded model's ``<stage>_step``."""
        if idx == 0 or self.folded is None:
            self.folded = fold_and_log_check(self.runner, unwrap_model(self.runner.model), self.check_shape,
                                             self.tolerance, f'{self.stage}_cfg.tolerance')
        self.runner.call_hook(f'before_{self.stage}_iter', batch_idx=idx, data_batch=data_batch)
        with autocast(enabled=self.fp16):
            outputs = getattr(self.folded, f'{self.stage}_step')(data_batch)
        outputs, losses = _update_losses(outputs, getattr(self, f'{self.stage}_loss'))
        setattr(self, f'{self.stage}_loss', losses)
        self.evaluator.process(data_samples=outputs, data_batch=data_batch)
        self.runner.call_hook(f'after_{self.stage}_iter', batch_idx=idx, data_batch=data_batch, outputs=outputs)


@LOOPS.register_module()
class FoldedValLoop(FoldedEvaluation, ValLoop):
    """``val_cfg = dict(type='mmcompact.FoldedValLoop', check_shape=(2, 3, H, W))``: validation of the folded
    model (see ``FoldedEvaluation``)."""
    stage = 'val'


@LOOPS.register_module()
class FoldedTestLoop(FoldedEvaluation, TestLoop):
    """``test_cfg = dict(type='mmcompact.FoldedTestLoop', check_shape=(2, 3, H, W))``: testing of the folded
    model (see ``FoldedEvaluation``)."""
    stage = 'test'
