from .ghostnetv3 import GhostNetV3
from .reparameterized import build_reparameterized
from .structured import build_structured_backbone

__all__ = ['GhostNetV3', 'build_reparameterized', 'build_structured_backbone']
