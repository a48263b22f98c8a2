"""Neutral ground: helpers every layer may use (config loading and model building, forward-hook recorders,
RNG state, module-tree helpers, example inputs). Imports nothing else from mmcompact but the registry."""
from .config import build_model, load_config, model_config
from .inputs import detection_inputs, random_inputs
from .modules import ema_weights, eval_copy, make_divisible, set_module, strip_prefix, unwrap_model
from .recorders import Recorder, resolve_module
from .rng import rng_state, set_rng_state

__all__ = [
    'build_model', 'load_config', 'model_config', 'detection_inputs', 'random_inputs', 'ema_weights', 'eval_copy',
    'make_divisible', 'set_module', 'strip_prefix', 'unwrap_model', 'Recorder', 'resolve_module', 'rng_state',
    'set_rng_state'
]
