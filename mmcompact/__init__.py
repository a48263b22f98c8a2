"""mmcompact: compact CNNs made better without making them bigger (OpenMMLab extension).

Importing the package registers every component in the ``mmcompact`` scope and makes MMEngine load its
own checkpoints safely under torch >= 2.6 (see ``mmcompact.checkpoint.safe_load``).
"""
from . import checkpoint, datasets, distill, engine, models, reparam, structure  # noqa: F401
from .checkpoint import install as _install_safe_loading
from .version import __version__

_install_safe_loading()

__all__ = ['__version__']
