"""A hook that exports the folded deploy checkpoint at the end of re-parameterized training."""
import copy
import os
from typing import Optional, Sequence

from mmengine.dist import is_main_process
from mmengine.hooks import EMAHook, Hook

from ..checkpoint import save_atomic
from ..registry import HOOKS
from ..utils import ema_weights, unwrap_model
from .folded_loops import fold_and_log_check


@HOOKS.register_module()
class DeployHook(Hook):
    """For models with re-parameterizable modules trained with the normal runner: at the end of training,
    write ``deploy.pth`` (the folded weights; loads strictly into the config with deploy=True) into
    ``out_dir`` (default: the work dir), checked against the training form on a random batch of
    ``check_shape`` (``tolerance``). With MMEngine's EMAHook on, the EMA weights are what gets folded and
    exported. To validate and test the folded model too, use ``FoldedValLoop`` / ``FoldedTestLoop``.
    """

    def __init__(self, out_dir: Optional[str] = None, check_shape: Sequence[int] = (2, 3, 224, 224),
                 tolerance: float = 1e-4):
        self.out_dir, self.check_shape, self.tolerance = out_dir, tuple(check_shape), tolerance

    def after_train(self, runner) -> None:
        if not is_main_process():
            return
        model = unwrap_model(runner.model)
        source = 'model'
        ema = next((h for h in runner.hooks if isinstance(h, EMAHook)), None)
        if ema is not None:
            model = copy.deepcopy(model)
            model.load_state_dict(ema_weights(ema.ema_model), strict=True)
            source = 'EMA'
        folded = fold_and_log_check(runner, model, self.check_shape, self.tolerance, 'DeployHook.tolerance')
        path = save_atomic(dict(meta=dict(deploy=True, weights=source), state_dict=folded.state_dict()),
                           os.path.join(self.out_dir or runner.work_dir, 'deploy.pth'), overwrite=True)
        runner.logger.info(f'DeployHook: wrote the folded {source} weights to {path}')
