"""Re-parameterization-aware training: evaluate the folded model, export the deploy checkpoint."""
import copy
import os
from typing import Optional, Sequence

from mmengine.dist import is_main_process
from mmengine.hooks import EMAHook, Hook

from ..checkpoint import save_atomic
from ..deploy import fold_checked
from ..registry import HOOKS
from ..utils import ema_weights, random_inputs, unwrap_model


@HOOKS.register_module()
class DeployHook(Hook):
    """For models with re-parameterizable modules trained with the normal runner.

    - ``eval_folded``: validation and test run on a folded copy of the model (the deploy form users will
      ship), checked once against the training form on a random batch (``tolerance``).
    - ``export``: at the end of training, write ``deploy.pth`` (the folded weights; loads strictly into the
      config with deploy=True) into ``out_dir`` (default: the work dir), checked the same way.

    With MMEngine's EMAHook on, the EMA weights are what gets folded, evaluated and exported (this hook
    runs after EMAHook has swapped them in).
    """

    priority = 'NORMAL'  # after EMAHook (ABOVE_NORMAL) swaps the EMA weights in for validation

    def __init__(self, eval_folded: bool = True, export: bool = True, out_dir: Optional[str] = None,
                 check_shape: Sequence[int] = (2, 3, 224, 224), tolerance: float = 1e-4):
        self.eval_folded, self.export, self.out_dir = eval_folded, export, out_dir
        self.check_shape, self.tolerance = tuple(check_shape), tolerance
        self._checked = False

    def _fold(self, runner, model):
        device = next(model.parameters()).device
        folded, check = fold_checked(model, random_inputs(self.check_shape).to(device), self.tolerance,
                                     'DeployHook.tolerance')
        if not self._checked:
            runner.logger.info('DeployHook: folded model matches the training form (max abs diff '
                               f"{check['max_abs_diff']:.2e})")
            self._checked = True
        return folded

    def _swap_in_folded(self, runner) -> None:
        if not self.eval_folded:
            return
        folded = self._fold(runner, unwrap_model(runner.model))
        runner.model.val_step = folded.val_step  # the loops call model.val_step / model.test_step
        runner.model.test_step = folded.test_step

    def _restore(self, runner) -> None:
        for name in ('val_step', 'test_step'):
            runner.model.__dict__.pop(name, None)

    def before_val_epoch(self, runner) -> None:
        self._swap_in_folded(runner)

    def after_val_epoch(self, runner, metrics=None) -> None:
        self._restore(runner)

    def before_test_epoch(self, runner) -> None:
        self._swap_in_folded(runner)

    def after_test_epoch(self, runner, metrics=None) -> None:
        self._restore(runner)

    def after_train(self, runner) -> None:
        if not self.export or not is_main_process():
            return
        model = unwrap_model(runner.model)
        source = 'model'
        ema = next((h for h in runner.hooks if isinstance(h, EMAHook)), None)
        if ema is not None:
            model = copy.deepcopy(model)
            model.load_state_dict(ema_weights(ema.ema_model), strict=True)
            source = 'EMA'
        folded = self._fold(runner, model)
        path = save_atomic(dict(meta=dict(deploy=True, weights=source), state_dict=folded.state_dict()),
                           os.path.join(self.out_dir or runner.work_dir, 'deploy.pth'), overwrite=True)
        runner.logger.info(f'DeployHook: wrote the folded {source} weights to {path}')
