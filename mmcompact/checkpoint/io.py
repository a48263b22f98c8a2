"""Atomic, non-clobbering checkpoint writes: mmcompact's own writers and, once installed, MMEngine's local
file backend (runner checkpoints, ``last_checkpoint``)."""
import os
import tempfile
from contextlib import contextmanager

import torch


@contextmanager
def atomic_file(path: str, mode: str = 'wb', encoding=None):
    """Open a temporary file beside ``path``; on a clean exit flush, fsync and rename it onto ``path``.

    A process killed at any point leaves either the previous ``path`` or the new one, never a torn file
    (at most a hidden ``.<name>.*.tmp`` beside it).
    """
    path = os.path.abspath(path)
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix='.' + os.path.basename(path), suffix='.tmp')
    try:
        with os.fdopen(fd, mode, encoding=encoding) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save_atomic(obj, path: str, overwrite: bool = False) -> str:
    """``torch.save`` through ``atomic_file``: never a half-written file.

    Refuses to replace an existing ``path`` unless ``overwrite``; returns ``path``.
    """
    path = os.path.abspath(path)
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f'{path} already exists; choose another output path (or pass --force / '
                              'overwrite=True to replace it)')
    with atomic_file(path) as f:
        torch.save(obj, f)
    return path


def install_atomic_local_writes() -> None:
    """Make MMEngine's ``LocalBackend.put``/``put_text`` (used by ``save_checkpoint`` and the
    CheckpointHook) write through ``atomic_file``. Idempotent."""
    from mmengine.fileio.backends import LocalBackend
    if getattr(LocalBackend.put, '_mmcompact_atomic', False):
        return

    def put(self, obj: bytes, filepath) -> None:
        with atomic_file(str(filepath), 'wb') as f:
            f.write(obj)

    def put_text(self, obj: str, filepath, encoding: str = 'utf-8') -> None:
        with atomic_file(str(filepath), 'w', encoding=encoding) as f:
            f.write(obj)

    put._mmcompact_atomic = put_text._mmcompact_atomic = True
    LocalBackend.put, LocalBackend.put_text = put, put_text
