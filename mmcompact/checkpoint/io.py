"""Atomic, non-clobbering checkpoint writes with a content hash: mmcompact's own writers and, once
installed, MMEngine's local file backend (runner checkpoints, ``last_checkpoint``)."""
import hashlib
import io
import os
import re
import shutil
import stat
import tempfile
from contextlib import contextmanager
from typing import List

import torch

HASH_SUFFIX = '.sha256'
_TMP_SUFFIX = '.tmp'


def file_sha256(path: str) -> str:
    """Hex SHA-256 of a file's bytes (read in 1 MiB chunks)."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            digest.update(chunk)
    return digest.hexdigest()


def _plain_write_mode(path: str) -> int:
    """The permission bits a plain ``open(path, 'w')`` would leave: the existing file's, or 0o666 minus the
    umask for a new file."""
    if os.path.exists(path):
        return stat.S_IMODE(os.stat(path).st_mode)
    return 0o666 & ~_umask()


def _umask() -> int:
    """The process umask (reading it means setting it, so it is set back at once)."""
    umask = os.umask(0)
    os.umask(umask)
    return umask


def remove_stale_temporaries(directory: str) -> List[str]:
    """Delete the temporaries ``atomic_file`` left in ``directory`` when a process was killed mid-write:
    hidden ``.<name>.<pid>.<random>.tmp`` files whose writing process no longer runs. Returns their paths."""
    removed = []
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return removed
    for name in names:
        match = re.fullmatch(r'\..+\.(\d+)\.[^.]+\.tmp', name)
        if match is None or _process_alive(int(match.group(1))):
            continue
        path = os.path.join(directory, name)
        try:
            os.unlink(path)
            removed.append(path)
        except FileNotFoundError:
            pass
    return removed


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextmanager
def atomic_file(path: str, mode: str = 'wb', encoding=None):
    """Open a temporary file beside ``path``; on a clean exit flush, fsync and rename it onto ``path``.

    A process killed at any point leaves either the previous ``path`` or the new one, never a torn file;
    its temporary (``.<name>.<pid>.<random>.tmp``) is removed by the next write into that folder. The file
    gets the permissions a plain write would (umask respected, an existing file's mode kept).
    """
    path = os.path.abspath(path)
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    remove_stale_temporaries(directory)
    permissions = _plain_write_mode(path)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f'.{os.path.basename(path)}.{os.getpid()}.',
                               suffix=_TMP_SUFFIX)
    try:
        os.fchmod(fd, permissions)
        with os.fdopen(fd, mode, encoding=encoding) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


@contextmanager
def atomic_directory(path: str, replace: bool = False):
    """Yield a fresh staging folder beside ``path``; on a clean exit it becomes ``path``, replacing an
    existing folder whole when ``replace`` (never merged into it). On an error the staging folder is removed
    and ``path`` is left as it was. ``FileExistsError`` up front if ``path`` is a non-empty folder and not
    ``replace``."""
    path = os.path.abspath(path.rstrip('/'))
    if os.path.exists(path) and not (os.path.isdir(path) and not os.listdir(path)) and not replace:
        raise FileExistsError(f'{path} exists and is not empty: choose another folder or pass --force')
    parent = os.path.dirname(path)
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(dir=parent, prefix=f'.{os.path.basename(path)}.{os.getpid()}.', suffix='.tmp')
    try:
        yield staging
        os.chmod(staging, stat.S_IMODE(os.stat(path).st_mode) if os.path.exists(path) else 0o777 & ~_umask())
        old = None
        if os.path.exists(path):
            old = tempfile.mkdtemp(dir=parent, prefix=f'.{os.path.basename(path)}.{os.getpid()}.old.', suffix='.tmp')
            os.rmdir(old)
            os.replace(path, old)
        os.replace(staging, path)
        if old is not None:
            shutil.rmtree(old)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def write_checkpoint_bytes(data: bytes, path: str) -> None:
    """Write a checkpoint's bytes atomically with a ``<path>.sha256`` sidecar that ``safe_load`` verifies.

    Order: the old sidecar goes first, then the file is replaced, then the new sidecar is written, so a
    kill at any point leaves a file whose sidecar (if any) is its own.
    """
    sidecar = path + HASH_SUFFIX
    if os.path.exists(sidecar):
        os.unlink(sidecar)
    with atomic_file(path, 'wb') as f:
        f.write(data)
    with atomic_file(sidecar, 'w') as f:
        f.write(f'{hashlib.sha256(data).hexdigest()}  {os.path.basename(path)}\n')


def save_atomic(obj, path: str, overwrite: bool = False) -> str:
    """``torch.save`` written atomically, with its SHA-256 sidecar (``write_checkpoint_bytes``).

    Refuses to replace an existing ``path`` unless ``overwrite``; returns ``path``.
    """
    path = os.path.abspath(path)
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f'{path} already exists; choose another output path (or pass --force / '
                              'overwrite=True to replace it)')
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    write_checkpoint_bytes(buffer.getvalue(), path)
    return path


def install_atomic_local_writes() -> None:
    """Make MMEngine's ``LocalBackend.put``/``put_text`` (used by ``save_checkpoint`` and the
    CheckpointHook) write through ``atomic_file``; ``.pth`` files get their SHA-256 sidecar, and
    ``LocalBackend.remove`` of a ``.pth`` file removes its sidecar too (MMEngine's stock CheckpointHook deletes
    checkpoints beyond ``max_keep_ckpts`` with it). Idempotent."""
    from mmengine.fileio.backends import LocalBackend
    if getattr(LocalBackend.put, '_mmcompact_atomic', False):
        return

    def put(self, obj: bytes, filepath) -> None:
        if str(filepath).endswith('.pth'):
            write_checkpoint_bytes(obj, str(filepath))
            return
        with atomic_file(str(filepath), 'wb') as f:
            f.write(obj)

    def put_text(self, obj: str, filepath, encoding: str = 'utf-8') -> None:
        with atomic_file(str(filepath), 'w', encoding=encoding) as f:
            f.write(obj)

    plain_remove = LocalBackend.remove

    def remove(self, filepath) -> None:
        plain_remove(self, filepath)
        sidecar = str(filepath) + HASH_SUFFIX
        if str(filepath).endswith('.pth') and os.path.isfile(sidecar):
            os.remove(sidecar)

    put._mmcompact_atomic = put_text._mmcompact_atomic = True
    LocalBackend.put, LocalBackend.put_text, LocalBackend.remove = put, put_text, remove
