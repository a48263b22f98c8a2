"""Engine pieces: hooks, loops and optimizer wrappers for re-parameterized, distilled and long runs."""
from .checkpoint_hook import CheckpointHook
from .deploy_hook import DeployHook
from .distill_hooks import DistillLossWeightHook, StopDistillHook, StudentExportHook, TeacherValHook, schedule_factor
from .folded_loops import FoldedTestLoop, FoldedValLoop
from .optim_wrappers import NonFiniteGuardOptimWrapper
from .reliability_hooks import NonFiniteLossHook, RandomStateHook

__all__ = [
    'CheckpointHook', 'DeployHook', 'FoldedTestLoop', 'FoldedValLoop', 'DistillLossWeightHook', 'StopDistillHook',
    'StudentExportHook', 'TeacherValHook',
    'schedule_factor', 'NonFiniteGuardOptimWrapper', 'NonFiniteLossHook', 'RandomStateHook'
]
