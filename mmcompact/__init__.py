"""mmcompact: compact CNNs made better without making them bigger (OpenMMLab extension).

Importing the package registers every component in the ``mmcompact`` scope and makes the process-wide
changes listed in ``GLOBAL_CHANGES`` (and only those), logged once to the ``mmcompact`` logger.
"""
import logging

from . import analysis, checkpoint, data, deploy, distill, engine, models, reparam, structure, utils  # noqa: F401
from .version import __version__

# Everything ``import mmcompact`` changes outside its own modules, and why (README: "What importing
# mmcompact changes").
GLOBAL_CHANGES = (
    "torch.serialization safe globals: the exact globals MMEngine checkpoints contain, so they load with "
    "weights_only=True under torch >= 2.6 (MMEngine 0.10.7 would fail, and its upstream fix loads with "
    "weights_only=False, which runs arbitrary pickles)",
    "MMEngine's CheckpointLoader '' (local file) scheme -> mmcompact.checkpoint.safe_load (weights-only "
    "loading with a clear error; the same for load_from, --resume and load_checkpoint)",
    "MMEngine's LocalBackend.put/put_text write through a temporary file and an atomic rename (with the "
    "mode a plain write gives), so a run killed while saving never leaves a truncated checkpoint or "
    "last_checkpoint; .pth files get a .sha256 sidecar that loading verifies, and LocalBackend.remove of a .pth file "
    "removes its sidecar",
    "mmengine.config.utils.MODULE2PACKAGE['mmcompact'] = 'mmcompact', so configs may inherit "
    "'mmcompact::<folder>/<config>.py' (the package ships its configs in .mim/configs, as mmdet does)",
)


def _apply_global_changes() -> None:
    from mmengine.config.utils import MODULE2PACKAGE
    checkpoint.install()
    MODULE2PACKAGE.setdefault('mmcompact', 'mmcompact')
    logging.getLogger('mmcompact').info('import mmcompact changed: %s', '; '.join(GLOBAL_CHANGES))


_apply_global_changes()

__all__ = ['__version__', 'GLOBAL_CHANGES']
