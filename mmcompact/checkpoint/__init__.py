"""Checkpoint safety: weights-only loading of MMEngine checkpoints, atomic writes with a content hash."""
from .fit import CheckpointMismatchError, check_checkpoint_fits, checkpoint_weights
from .io import (HASH_SUFFIX, atomic_directory, atomic_file, file_sha256, remove_stale_temporaries, save_atomic,
                 write_checkpoint_bytes)
from .safe_load import (CheckpointLoadError, CorruptCheckpointError, UnsafeCheckpointError, allow_globals, install,
                        safe_load, verify_hash)

__all__ = [
    'CheckpointMismatchError', 'check_checkpoint_fits', 'checkpoint_weights',
    'HASH_SUFFIX', 'atomic_directory', 'atomic_file', 'file_sha256', 'remove_stale_temporaries', 'save_atomic',
    'write_checkpoint_bytes', 'CheckpointLoadError', 'CorruptCheckpointError', 'UnsafeCheckpointError',
    'allow_globals', 'install', 'safe_load', 'verify_hash'
]
