"""Engine pieces: hooks for distillation training."""
from .distill_hooks import (DistillLossWeightHook, StopDistillHook, StudentExportHook,
                            TeacherValHook, schedule_factor)

__all__ = [
    'DistillLossWeightHook', 'StopDistillHook', 'StudentExportHook', 'TeacherValHook', 'schedule_factor'
]
