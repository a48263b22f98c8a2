"""Reading configs and building their models (any mmdet / mmpretrain / mmcompact config)."""
import copy
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


def model_config(cfg: Config) -> dict:
    """``cfg.model`` as MMEngine's Runner builds it: a top-level ``data_preprocessor`` (where mmpretrain
    configs keep the input mean/std) goes into the model unless the model sets its own. Without it the model
    sees unnormalised 0-255 pixels."""
    model = copy.deepcopy(cfg.model)
    if cfg.get('data_preprocessor') is not None and isinstance(model, dict):
        model.setdefault('data_preprocessor', copy.deepcopy(cfg.data_preprocessor))
    return model


def build_model(cfg: Config, checkpoint: Optional[str] = None, device: str = 'cpu') -> nn.Module:
    """Build the config's model as the Runner would (``model_config``) in the config's default scope and load
    ``checkpoint`` strictly (safe loading)."""
    init_default_scope(cfg.get('default_scope', 'mmengine'))
    model = MODELS.build(model_config(cfg))
    if checkpoint is not None:
        load_checkpoint(model, checkpoint, map_location='cpu', strict=True)
    return model.to(device)
