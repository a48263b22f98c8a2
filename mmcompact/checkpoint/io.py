"""Atomic, non-clobbering checkpoint writes."""
import os
import tempfile

import torch


def save_atomic(obj, path: str, overwrite: bool = False) -> str:
    """``torch.save`` to a temporary file beside ``path``, fsync, then rename: never a half-written file.

    Refuses to replace an existing ``path`` unless ``overwrite``; returns ``path``.
    """
    path = os.path.abspath(path)
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f'{path} already exists; choose another output path (or pass --force / '
                              'overwrite=True to replace it)')
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix='.' + os.path.basename(path), suffix='.tmp')
    try:
        with os.fdopen(fd, 'wb') as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path
