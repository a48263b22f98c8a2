"""What the tools call and nothing in the library imports (the top layer): runner plumbing and the
``--cfg-options`` builders of the demo and studies."""
from .options import PLAIN_GHOSTNET_OPTIONS, coco_data_options, epoch_overrides, schedule_overrides
from .runner import (check_load_from, evaluate, resolve_work_dir, run_jobs, run_tool, setup_launcher,
                     shutdown_distributed)

__all__ = ['PLAIN_GHOSTNET_OPTIONS', 'coco_data_options', 'epoch_overrides', 'schedule_overrides', 'check_load_from', 'evaluate', 'resolve_work_dir', 'run_jobs', 'run_tool', 'setup_launcher',
           'shutdown_distributed']
