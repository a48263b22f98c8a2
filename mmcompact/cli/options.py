"""``--cfg-options`` builders of the demo and the studies (what their train.py runs override)."""
from typing import Any, Dict, Optional, Sequence

# ``--cfg-options`` that turn a re-parameterized GhostNetV3 student config into the plain network (its deploy
# form, trained as is): the "plain" baseline of the demo and the recipe studies.
PLAIN_GHOSTNET_OPTIONS = {'model.backbone.num_branches': 1, 'model.backbone.extra_branches': False}


def schedule_overrides(iters: int) -> Dict[str, Any]:
    """``--cfg-options`` that shorten/lengthen an iteration-based quick-start schedule to ``iters``
    (train loop, validation at the end, linear warm-up over the first 10% (at most 30 iterations) then
    cosine, final checkpoint)."""
    warmup = max(1, min(30, iters // 10))
    return {'train_cfg.max_iters': iters, 'train_cfg.val_interval': iters, 'param_scheduler.0.end': warmup,
            'param_scheduler.1.begin': warmup, 'param_scheduler.1.end': iters,
            'default_hooks.checkpoint.interval': iters}


def epoch_overrides(epochs: int) -> Dict[str, Any]:
    """``--cfg-options`` that set an epoch-based schedule (train loop, cosine ``param_scheduler.0.T_max``,
    validation at the end) to ``epochs``, with a checkpoint every epoch (resumable)."""
    return {'train_cfg.max_epochs': epochs, 'train_cfg.val_interval': epochs, 'param_scheduler.0.T_max': epochs,
            'default_hooks.checkpoint.interval': 1}


def warmup_cosine_epoch_overrides(epochs: int, val_interval: Optional[int] = None) -> Dict[str, Any]:
    """``--cfg-options`` that set the Fashion-MNIST schedule (configs/_base_/schedules/fashion_mnist_adamw_cosine.py:
    one LinearLR warm-up epoch, then cosine ``param_scheduler.1`` over the rest; a checkpoint every epoch) to
    ``epochs``, validating every ``val_interval`` epochs (default: at the end)."""
    return {'train_cfg.max_epochs': epochs, 'train_cfg.val_interval': val_interval or epochs,
            'param_scheduler.1.T_max': epochs - 1}


def coco_data_options(data_root: str, classes: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    """``--cfg-options`` pointing a COCO-format detection config (train/val/test dataloaders and the
    evaluators) at the dataset written by ``tools/misc/make_synthetic.py det DATA_ROOT``; ``classes``: its
    category names where they are not the config's ``metainfo.classes`` (e.g. Fashion-MNIST objects)."""
    root = data_root.rstrip('/') + '/'
    options = {f'{split}_dataloader.dataset.data_root': root for split in ('train', 'val', 'test')}
    options.update({f'{split}_evaluator.ann_file': root + 'annotations/instances_val.json'
                    for split in ('val', 'test')})
    if classes is not None:
        options.update({f'{split}_dataloader.dataset.metainfo.classes': tuple(classes)
                        for split in ('train', 'val', 'test')})
    return options
