"""Engine pieces: hooks for re-parameterized and distillation training."""
from .checkpoint_hook import CheckpointHook
from .deploy_hook import DeployHook, FoldedTestLoop, FoldedValLoop
from .distill_hooks import (DistillLossWeightHook, StopDistillHook, StudentExportHook,
                            TeacherValHook, schedule_factor)
from .reliability_hooks import NonFiniteGuardOptimWrapper, NonFiniteLossHook, RandomStateHook

__all__ = [
    'CheckpointHook', 'DeployHook', 'FoldedTestLoop', 'FoldedValLoop', 'DistillLossWeightHook', 'StopDistillHook', 'StudentExportHook', 'TeacherValHook',
    'schedule_factor', 'NonFiniteGuardOptimWrapper', 'NonFiniteLossHook', 'RandomStateHook'
]
