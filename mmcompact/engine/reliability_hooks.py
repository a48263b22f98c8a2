"""Hooks that make long runs survive faults: exact resume (RNG state in checkpoints) and the report and limit
of the steps ``NonFiniteGuardOptimWrapper`` skipped (non-finite losses, poisoned checkpoints)."""
import copy
import math
from typing import Optional

import torch
from mmengine.hooks import EMAHook, Hook
from mmengine.runner import IterBasedTrainLoop

from ..registry import HOOKS
from ..utils import rng_state, set_rng_state
from .optim_wrappers import NonFiniteGuardOptimWrapper


class _RestoreAfterReplay:
    """Stands in for IterBasedTrainLoop's dataloader iterator after ``--resume``: the loop first replays the
    ``replay`` batches already trained on (drawing random augmentations that are thrown away); the RNG state
    of the checkpoint is restored just before the first new batch, and the loop gets its iterator back."""

    def __init__(self, loop, replay: int, state: dict):
        self.loop, self.iterator, self.replay, self.state = loop, loop.dataloader_iterator, replay, state

    def __iter__(self):
        return self

    def __next__(self):
        if self.replay > 0:
            self.replay -= 1
            return next(self.iterator)
        set_rng_state(self.state)
        self.loop.dataloader_iterator = self.iterator
        return next(self.iterator)


@HOOKS.register_module()
class RandomStateHook(Hook):
    """Makes ``--resume`` draw the same random numbers as an uninterrupted run (MMEngine only re-seeds).

    Saves the python/numpy/torch RNG states in every checkpoint and restores them on resume: before the
    first new batch is drawn (epoch loops), or after IterBasedTrainLoop has replayed the batches already
    trained on (iteration loops). Validation during training runs on a saved-and-restored RNG state, so
    whether a resumed run validated at the checkpoint's iteration or not does not change its training.
    """
    priority = 'VERY_LOW'

    def __init__(self):
        self._pending = None  # the checkpoint's state, until the train loop draws its first new batch
        self._train_state = None

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint['rng_state'] = rng_state()

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        if getattr(runner, '_resume', False) and 'rng_state' in checkpoint:
            self._pending = checkpoint['rng_state']

    def before_train_epoch(self, runner) -> None:
        if self._pending is None:
            return
        loop = runner.train_loop
        if isinstance(loop, IterBasedTrainLoop) and loop.iter > 0:
            loop.dataloader_iterator = _RestoreAfterReplay(loop, loop.iter, self._pending)
        else:
            set_rng_state(self._pending)
        self._pending = None

    def before_val(self, runner) -> None:
        self._train_state = rng_state()

    def after_val(self, runner) -> None:
        if self._train_state is not None:
            set_rng_state(self._train_state)
            self._train_state = None


@HOOKS.register_module()
class NonFiniteLossHook(Hook):
    """Reports, counts and limits the steps ``NonFiniteGuardOptimWrapper`` skipped for a NaN/Inf loss
    (the run's ``optim_wrapper`` must be one: ``optim_wrapper=dict(type='mmcompact.NonFiniteGuardOptimWrapper',
    optimizer=...)``).

    ``action='skip'``: a skipped step leaves the model as it was before its forward (parameters and buffers,
    by the wrapper; the EMA copy, by this hook). Skips are logged as ``train/nonfinite_skipped``, counted in
    checkpoints (so ``max_skips`` survives ``--resume``), and training stops once more than ``max_skips``
    steps were skipped. ``action='stop'``: stop at the first one. The message names the loss term(s) and the
    iteration. Independently, a checkpoint whose weights are not all finite is never written: the run stops
    instead, naming the first bad tensor.
    """
    priority = 'VERY_HIGH'  # before EMAHook (ABOVE_NORMAL): a skipped step's EMA update is undone

    def __init__(self, action: str = 'skip', max_skips: Optional[int] = 100):
        if action not in ('skip', 'stop'):
            raise ValueError(f"NonFiniteLossHook action must be 'skip' or 'stop', got {action!r}")
        self.action, self.max_skips = action, max_skips
        self.skipped = 0
        self._ema_before = None   # the EMA weights to restore after EMAHook averaged a skipped step in

    def before_train(self, runner) -> None:
        if not isinstance(runner.optim_wrapper, NonFiniteGuardOptimWrapper):
            raise TypeError(
                f'NonFiniteLossHook needs the guard optimizer wrapper, got {type(runner.optim_wrapper).__name__}:'
                " set optim_wrapper.type='mmcompact.NonFiniteGuardOptimWrapper' in the config")

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if runner.optim_wrapper.skipped_last:
            self._report_skip(runner, outputs or {})
        runner.message_hub.update_scalar('train/nonfinite_skipped', self.skipped)

    def _report_skip(self, runner, log_vars: dict) -> None:
        values = {name: float(torch.as_tensor(value).detach()) for name, value in log_vars.items()}
        bad = [f'{name}={value:g}' for name, value in values.items()
               if name != 'loss' and 'loss' in name and not math.isfinite(value)]
        if not bad and not math.isfinite(values.get('loss', 0.0)):
            bad = [f"loss={values['loss']:g}"]
        where = f"iteration {runner.iter + 1}: {', '.join(bad) or 'on another rank'}"
        if self.action == 'stop':
            raise FloatingPointError(f'non-finite loss at {where} (the step was not applied). Lower the '
                                     'learning rate, check the data, or use NonFiniteLossHook(action="skip")')
        self.skipped += 1
        runner.logger.warning(f'skipped the step of non-finite loss at {where} ({self.skipped} skipped)')
        if self.max_skips is not None and self.skipped > self.max_skips:
            raise FloatingPointError(f'{self.skipped} steps had non-finite losses (last at {where}), more '
                                     f'than max_skips={self.max_skips}: stopping')
        ema = next((h for h in runner.hooks if isinstance(h, EMAHook)), None)
        if ema is not None:  # EMAHook (after this hook) will average the step in
            self._ema_before = copy.deepcopy(ema.ema_model.state_dict())

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        self._restore_ema(runner)

    def _restore_ema(self, runner) -> None:
        """Put back the EMA weights of before a skipped step (EMAHook averaged it in after this hook ran)."""
        if self._ema_before is None:
            return
        ema = next(h for h in runner.hooks if isinstance(h, EMAHook))
        ema.ema_model.load_state_dict(self._ema_before)
        self._ema_before = None

    def before_val_epoch(self, runner) -> None:
        self._restore_ema(runner)

    def after_train(self, runner) -> None:
        self._restore_ema(runner)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        self.skipped = int(checkpoint.get('meta', {}).get('nonfinite_skipped', self.skipped))

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        self._restore_ema(runner)  # before EMAHook (lower priority) writes the EMA weights
        checkpoint.setdefault('meta', {})['nonfinite_skipped'] = self.skipped
        for key in ('state_dict', 'ema_state_dict'):
            for name, value in checkpoint.get(key, {}).items():
                if torch.is_tensor(value) and value.is_floating_point() and not torch.isfinite(value).all():
                    raise FloatingPointError(f"refusing to write a checkpoint: {key}['{name}'] holds "
                                             'non-finite values; the previous checkpoint is kept')
