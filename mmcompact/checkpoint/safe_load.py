"""Safe checkpoint loading: ``weights_only=True`` with an allow-list of exactly what MMEngine writes.

torch >= 2.6 loads with ``weights_only=True`` by default, and MMEngine 0.10.7 checkpoints then fail on
their message hub (``HistoryBuffer``, numpy arrays and scalars). Instead of loading with
``weights_only=False`` (which executes any pickle), ``install()`` allow-lists only those globals, and
replaces MMEngine's local-file loader so a refused file gets an error that names the global.

``HistoryBuffer`` pickles its statistics methods as ``getattr(HistoryBuffer, 'min')``; ``builtins.getattr``
is therefore mapped to ``restricted_getattr``, which resolves nothing but those methods.
"""
import importlib
import os.path as osp
import pickle
import re
from typing import Iterable, List

import torch
import torch.serialization

from .io import HASH_SUFFIX, file_sha256

_NUMPY_GLOBALS = (
    'numpy.ndarray', 'numpy.dtype', 'numpy._core.multiarray._reconstruct', 'numpy._core.multiarray.scalar',
    'numpy.core.multiarray._reconstruct', 'numpy.core.multiarray.scalar',
    *(f'numpy.dtypes.{n}DType' for n in (
        'Bool', 'Int8', 'Int16', 'Int32', 'Int64', 'UInt8', 'UInt16', 'UInt32', 'UInt64', 'Float16',
        'Float32', 'Float64', 'LongDouble', 'Complex64', 'Complex128', 'Str', 'Bytes', 'Object')))
_MMENGINE_GLOBALS = ('mmengine.logging.history_buffer.HistoryBuffer', )


class CheckpointLoadError(ValueError):
    """A checkpoint was refused: unsafe, corrupt, truncated or not a checkpoint (the message says which)."""


class UnsafeCheckpointError(pickle.UnpicklingError, CheckpointLoadError):
    """A checkpoint pickles a global that is not on the allow-list; nothing from it was executed."""


class CorruptCheckpointError(CheckpointLoadError):
    """A checkpoint is empty, truncated, not a checkpoint, or differs from the hash recorded when written."""


def _resolve(qualname: str):
    module, _, name = qualname.rpartition('.')
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return None


def restricted_getattr(obj, name: str):
    """``getattr`` limited to the statistics methods a pickled ``HistoryBuffer`` refers to."""
    from mmengine.logging import HistoryBuffer
    allowed = {'min', 'max', 'mean', 'current', *HistoryBuffer._statistics_methods}
    if obj is not HistoryBuffer or name not in allowed:
        raise UnsafeCheckpointError(
            f'refused getattr({getattr(obj, "__name__", type(obj).__name__)}, {name!r}): only '
            f'HistoryBuffer statistics methods may be resolved while loading a checkpoint')
    return getattr(obj, name)


def allowed_globals() -> List:
    """The objects ``install()`` adds to torch's weights-only allow-list."""
    found = [_resolve(n) for n in (*_NUMPY_GLOBALS, *_MMENGINE_GLOBALS)]
    return [obj for obj in found if obj is not None] + [(restricted_getattr, 'builtins.getattr')]


def allow_globals(qualnames: Iterable[str]) -> None:
    """Add globals by dotted name (``'argparse.Namespace'``) for files you trust; see the error text."""
    objs = []
    for name in qualnames:
        obj = _resolve(name)
        if obj is None:
            raise ValueError(f"cannot import '{name}' to allow it: check the dotted path")
        objs.append(obj)
    torch.serialization.add_safe_globals(objs)


def verify_hash(filename: str) -> None:
    """If ``filename`` has a ``.sha256`` sidecar (mmcompact writes one with every checkpoint), check the
    file against it; ``CorruptCheckpointError`` on a mismatch. Files without one (written elsewhere) pass."""
    sidecar = filename + HASH_SUFFIX
    if not osp.isfile(sidecar):
        return
    with open(sidecar) as f:
        expected = (f.read().split() or [''])[0]
    actual = file_sha256(filename)
    if actual != expected:
        raise CorruptCheckpointError(
            f'checkpoint {filename!r} does not match the SHA-256 recorded when it was written ({sidecar}): '
            'its bytes changed since (disk or copy corruption). Use an earlier checkpoint; delete the '
            '.sha256 file only if you know the file is good.')


def safe_load(filename: str, map_location=None):
    """``torch.load(filename, weights_only=True)`` with the allow-list; refusals raise UnsafeCheckpointError.

    The message names the refused global and how to allow it; nothing in the file is executed.
    """
    filename = osp.expanduser(str(filename))
    if not osp.isfile(filename):
        raise FileNotFoundError(f'checkpoint {filename!r} does not exist (check the path)')
    if osp.getsize(filename) == 0:
        raise CorruptCheckpointError(f'checkpoint {filename!r} is empty (0 bytes): it was never written '
                                     'completely; use an earlier checkpoint')
    verify_hash(filename)
    try:
        return torch.load(filename, map_location=map_location, weights_only=True)
    except (EOFError, RuntimeError, KeyError) as err:  # truncated zip, no central directory, a text file
        raise CorruptCheckpointError(
            f'checkpoint {filename!r} cannot be read ({type(err).__name__}: {str(err).splitlines()[0][:160]}): '
            'it is truncated or not a PyTorch checkpoint; use an earlier checkpoint') from None
    except pickle.UnpicklingError as err:
        refusal = isinstance(err, UnsafeCheckpointError) or isinstance(err.__context__, UnsafeCheckpointError) \
            or 'global' in str(err).lower()
        if not refusal:
            raise CorruptCheckpointError(
                f'checkpoint {filename!r} is not a PyTorch checkpoint (unpickling failed: '
                f'{str(err).splitlines()[0][:160]}); check the path') from None
        refused = err if isinstance(err, UnsafeCheckpointError) else err.__context__
        if isinstance(refused, UnsafeCheckpointError):  # raised by restricted_getattr inside torch.load
            raise UnsafeCheckpointError(f'refused to load {filename!r}: {refused}. Nothing from the file '
                                        'was executed.') from None
        match = re.search(r'(?:GLOBAL|global|function) ([\w.<>]+)', str(err))
        name = match.group(1) if match else '<unknown>'
        raise UnsafeCheckpointError(
            f"refused to load {filename!r}: it pickles the global '{name}', which is not on mmcompact's "
            "allow-list of what MMEngine checkpoints contain, so it may run code when unpickled. Nothing "
            'from the file was executed. If you trust this file, allow that global first: '
            f"mmcompact.checkpoint.allow_globals(['{name}']) (or torch.serialization.add_safe_globals)."
        ) from None


def install() -> None:
    """Allow-list MMEngine's checkpoint globals, route its local-file loader through ``safe_load`` and make
    its local writes atomic (``install_atomic_local_writes``).

    Called on ``import mmcompact``; makes ``load_checkpoint``, ``Runner.resume`` and ``load_from`` work
    under torch >= 2.6 without ever loading with ``weights_only=False``, and a run killed while saving keeps
    its previous checkpoint. Idempotent.
    """
    from mmengine.runner.checkpoint import CheckpointLoader

    from .io import install_atomic_local_writes
    install_atomic_local_writes()
    torch.serialization.add_safe_globals(allowed_globals())
    CheckpointLoader.register_scheme(prefixes='', loader=safe_load, force=True)
