"""What the tools call and nothing in the library imports (the top layer): runner plumbing and the
``--cfg-options`` builders of the demo and studies."""
from .options import coco_data_options, schedule_overrides
from .runner import check_load_from, evaluate, resolve_work_dir, run_tool, setup_launcher, shutdown_distributed

__all__ = ['coco_data_options', 'schedule_overrides', 'check_load_from', 'evaluate', 'resolve_work_dir', 'run_tool', 'setup_launcher',
           'shutdown_distributed']
