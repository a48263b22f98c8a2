"""What the tools call and nothing in the library imports (the top layer): runner plumbing and the
``--cfg-options`` builders of the demo and studies."""
from .options import (PLAIN_GHOSTNET_OPTIONS, coco_data_options, epoch_overrides, schedule_overrides,
                      warmup_cosine_epoch_overrides)
from .runner import (FINISHED_MARKER, check_load_from, check_resume, evaluate, finished_metric, resolve_work_dir,
                     resume_checkpoint_path, run_jobs, run_tool, setup_launcher, shutdown_distributed, train_or_reuse)
from .study_report import FMNIST_PUBLISHED, deploy_macs, plot_vs_macs

__all__ = ['FINISHED_MARKER', 'finished_metric', 'PLAIN_GHOSTNET_OPTIONS', 'coco_data_options', 'epoch_overrides',
           'schedule_overrides', 'warmup_cosine_epoch_overrides', 'check_load_from', 'check_resume',
           'resume_checkpoint_path', 'evaluate', 'resolve_work_dir', 'run_jobs', 'run_tool', 'setup_launcher',
           'shutdown_distributed', 'train_or_reuse', 'FMNIST_PUBLISHED', 'deploy_macs', 'plot_vs_macs']
