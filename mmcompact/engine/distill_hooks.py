"""Hooks of distillation training: loss-weight schedule, stopping distillation, student export.

The schedule and the stop are pure functions of the runner's iteration/epoch, which ``--resume``
restores, so a resumed run continues exactly where the interrupted one was.
"""
import math
from typing import Optional, Sequence

from mmengine.dist import is_main_process
from mmengine.hooks import EMAHook, Hook
from mmengine.logging import MMLogger

from ..registry import HOOKS
from ..utils import unwrap_model

SCHEDULES = ('constant', 'linear_warmup', 'cosine', 'step')


def _distiller(runner):
    model = unwrap_model(runner.model)
    if not hasattr(model, 'distill_weight'):
        raise TypeError(f'{type(model).__name__} is not a Distiller: distillation hooks need '
                        "model=dict(type='mmcompact.Distiller', ...)")
    return model


def schedule_factor(schedule: str, step: int, total: int, warmup: int = 0,
                    milestones: Sequence[int] = (), gamma: float = 0.1, min_factor: float = 0.0) -> float:
    """Multiplier of the distillation losses at ``step`` (iteration or epoch, 0-based) of ``total``."""
    if schedule == 'constant':
        return 1.0
    if schedule == 'linear_warmup':
        return min(1.0, (step + 1) / max(1, warmup))
    if schedule == 'cosine':
        progress = min(1.0, step / max(1, total))
        return min_factor + (1 - min_factor) * (1 + math.cos(math.pi * progress)) / 2
    if schedule == 'step':
        return gamma ** sum(step >= m for m in milestones)
    raise ValueError(f'schedule must be one of {SCHEDULES}, got {schedule!r}')


@HOOKS.register_module()
class DistillLossWeightHook(Hook):
    """Scales every distillation loss by a schedule: 'constant', 'linear_warmup' (over ``warmup`` steps),
    'cosine' (from 1 to ``min_factor`` over the run, or over ``total`` steps) or 'step' (x ``gamma`` at each
    milestone). Steps are iterations, or epochs with ``by_epoch=True``. The factor is logged as
    ``distill_weight``."""

    priority = 'NORMAL'

    def __init__(self, schedule: str = 'constant', by_epoch: bool = False, warmup: int = 0,
                 total: Optional[int] = None, milestones: Sequence[int] = (), gamma: float = 0.1,
                 min_factor: float = 0.0):
        schedule_factor(schedule, 0, 1, warmup, milestones, gamma, min_factor)  # validates early
        if schedule == 'linear_warmup' and warmup <= 0:
            raise ValueError("schedule='linear_warmup' needs warmup > 0 (steps of the warm-up)")
        self.schedule, self.by_epoch, self.warmup, self.total = schedule, by_epoch, warmup, total
        self.milestones, self.gamma, self.min_factor = tuple(milestones), gamma, min_factor

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        step = runner.epoch if self.by_epoch else runner.iter
        total = self.total or (runner.max_epochs if self.by_epoch else runner.max_iters)
        factor = schedule_factor(self.schedule, step, total, self.warmup, self.milestones, self.gamma,
                                 self.min_factor)
        _distiller(runner).distill_weight = factor
        runner.message_hub.update_scalar('train/distill_weight', factor)


@HOOKS.register_module()
class StopDistillHook(Hook):
    """Turns distillation off (the teacher stops running) from ``stop_epoch`` or ``stop_iter`` on."""

    def __init__(self, stop_epoch: Optional[int] = None, stop_iter: Optional[int] = None):
        if (stop_epoch is None) == (stop_iter is None):
            raise ValueError('StopDistillHook needs exactly one of stop_epoch and stop_iter')
        self.stop_epoch, self.stop_iter = stop_epoch, stop_iter

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        stopped = (runner.epoch >= self.stop_epoch) if self.stop_epoch is not None \
            else (runner.iter >= self.stop_iter)
        distiller = _distiller(runner)
        if distiller.distill_enabled and stopped:
            MMLogger.get_current_instance().info(
                f'distillation stopped at epoch {runner.epoch}, iteration {runner.iter}')
        distiller.distill_enabled = not stopped


@HOOKS.register_module()
class StudentExportHook(Hook):
    """At the end of training, write the student alone (``student.pth``, loads strictly into the plain
    student config) and, when it has re-parameterizable modules, its folded form (``student_deploy.pth``,
    for the student config with deploy=True), into ``out_dir`` (default: the work dir). With EMA on, the
    EMA weights are exported (``use_ema``)."""

    priority = 'LOWEST'

    def __init__(self, out_dir: Optional[str] = None, use_ema: bool = True, fold: bool = True,
                 check_shape: Sequence[int] = (2, 3, 224, 224), tolerance: float = 1e-4):
        self.out_dir, self.use_ema, self.fold = out_dir, use_ema, fold
        self.check_shape, self.tolerance = tuple(check_shape), tolerance

    def after_train(self, runner) -> None:
        if not is_main_process():  # one writer under torchrun
            return
        from ..distill.export import export_student
        distiller = _distiller(runner)
        state_dict, source = distiller.state_dict(), 'model'
        if self.use_ema:
            ema = next((h for h in runner.hooks if isinstance(h, EMAHook)), None)
            if ema is not None:
                state_dict, source = {k[len('module.'):]: v for k, v in ema.ema_model.state_dict().items()
                                      if k.startswith('module.')}, 'EMA'
        report = export_student(distiller, state_dict, self.out_dir or runner.work_dir, fold=self.fold,
                                check_shape=self.check_shape, tolerance=self.tolerance, overwrite=True)
        runner.logger.info(f"exported the student ({source} weights) to {report['student']}"
                           + (f", folded to {report['deploy']} (max abs diff {report['fold_diff']:.2e})"
                              if 'deploy' in report else ''))


@HOOKS.register_module()
class TeacherValHook(Hook):
    """Evaluates the teacher once, before training, on the validation set with the validation evaluator,
    and logs its metrics under ``teacher/`` (e.g. ``teacher/coco/bbox_mAP``): the reference the student
    is chasing. The teacher sees the student's data converted to its normalisation; a different teacher
    input size is refused (predictions would be in the wrong coordinates)."""

    priority = 'LOW'

    def before_train(self, runner) -> None:
        distiller = _distiller(runner)
        if (distiller.teacher_input or {}).get('size') is not None:
            raise ValueError('TeacherValHook cannot evaluate a teacher with its own input size '
                             '(model.teacher_input.size): remove the hook or the size')
        loop = getattr(runner, 'val_loop', None)
        if loop is None:
            raise ValueError('TeacherValHook needs val_dataloader, val_evaluator and val_cfg in the config')
        import torch
        for batch in loop.dataloader:
            data = distiller.data_preprocessor(batch, False)
            with torch.no_grad():
                outputs = distiller.teacher(distiller.teacher_inputs(data['inputs']), data['data_samples'],
                                            mode='predict')
            loop.evaluator.process(data_samples=outputs, data_batch=batch)
        metrics = loop.evaluator.evaluate(len(loop.dataloader.dataset))
        for key, value in metrics.items():
            runner.message_hub.update_scalar(f'teacher/{key}', value)
        runner.logger.info('teacher: ' + ', '.join(f'{k}: {v:.4f}' if isinstance(v, float) else f'{k}: {v}'
                                                   for k, v in metrics.items()))
