"""Checkpoint safety (weights-only loading, atomic writes) and converters."""
from .ghostnetv3 import (convert_and_verify_ghostnetv3, convert_ghostnetv3_state_dict,
                         load_ghostnetv3_source)
from .io import save_atomic
from .safe_load import UnsafeCheckpointError, allow_globals, install, safe_load

__all__ = [
    'convert_and_verify_ghostnetv3', 'convert_ghostnetv3_state_dict', 'load_ghostnetv3_source',
    'save_atomic', 'UnsafeCheckpointError', 'allow_globals', 'install', 'safe_load'
]
