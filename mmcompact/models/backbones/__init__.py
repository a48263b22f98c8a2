from .ghostnetv3 import GhostNetV3
from .reparameterized import build_reparameterized

__all__ = ['GhostNetV3', 'build_reparameterized']
