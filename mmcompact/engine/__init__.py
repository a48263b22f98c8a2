"""Engine pieces: hooks for re-parameterized and distillation training."""
from .deploy_hook import DeployHook
from .distill_hooks import (DistillLossWeightHook, StopDistillHook, StudentExportHook,
                            TeacherValHook, schedule_factor)
from .reliability_hooks import NonFiniteLossHook, RandomStateHook

__all__ = [
    'DeployHook', 'DistillLossWeightHook', 'StopDistillHook', 'StudentExportHook', 'TeacherValHook',
    'schedule_factor', 'NonFiniteLossHook', 'RandomStateHook'
]
