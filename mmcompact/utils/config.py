"""Reading configs and building their models (any mmdet / mmpretrain / mmcompact config)."""
import os
from typing import Any, Dict, Optional

from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope
from mmengine.runner import load_checkpoint
from torch import nn


def load_config(path: str, cfg_options: Optional[Dict[str, Any]] = None) -> Config:
    """Read a config (``_base_`` inheritance, ``custom_imports``) and apply ``--cfg-options`` overrides."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f'config file {path!r} does not exist (check the path)')
    cfg = Config.fromfile(path)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if 'model' not in cfg:
        raise KeyError(f"config {path!r} has no 'model' key: expected an mmdet/mmpretrain model config")
    return cfg


def build_model(cfg: Config, checkpoint: Optional[str] = None, device: str = 'cpu') -> nn.Module:
    """Build ``cfg.model`` in the config's default scope and load ``checkpoint`` strictly (safe loading)."""
    init_default_scope(cfg.get('default_scope', 'mmengine'))
    model = MODELS.build(cfg.model)
    if checkpoint is not None:
        load_checkpoint(model, checkpoint, map_location='cpu', strict=True)
    return model.to(device)
