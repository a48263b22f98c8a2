"""Small helpers on module trees: unwrapping runner models, replacing submodules, channel rounding."""
import copy
from typing import Dict

import torch
from mmengine.model import is_model_wrapper
from torch import nn


def unwrap_model(model: nn.Module) -> nn.Module:
    """The model inside a DDP/MMDistributedDataParallel wrapper (``runner.model``), or ``model`` itself."""
    return model.module if is_model_wrapper(model) else model


def eval_copy(model: nn.Module) -> nn.Module:
    """A deep copy of ``model`` in eval mode (``model`` is kept). Does not chain ``.eval()``: mmdet and
    mmpretrain backbones override ``train()`` and return None."""
    model = copy.deepcopy(model)
    model.eval()
    return model


def ema_weights(ema_model: nn.Module) -> Dict[str, torch.Tensor]:
    """The averaged weights of MMEngine's ``ExponentialMovingAverage`` (keys ``module.*``) with the keys of
    the model they average."""
    return strip_prefix(ema_model.state_dict(), 'module.')


def strip_prefix(state_dict: Dict[str, torch.Tensor], prefix: str) -> Dict[str, torch.Tensor]:
    """The entries of ``state_dict`` whose keys start with ``prefix``, with the prefix removed."""
    return {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}


def set_module(root: nn.Module, path: str, module: nn.Module) -> None:
    """Replace the submodule at ``path`` (e.g. ``layers.1`` or ``layer2``) by ``module``."""
    parent_path, _, name = path.rpartition('.')
    parent = root.get_submodule(parent_path) if parent_path else root
    parent._modules[name] = module


def make_divisible(value: float, divisor: int = 4) -> int:
    """Round a channel count to the nearest multiple of ``divisor`` (at least ``divisor``), never more
    than 10% below ``value`` (the rounding of MobileNet/GhostNet width multipliers)."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded
