from .ghostnetv3 import GhostNetV3
from .ghostnetv3_convert import convert_and_verify_ghostnetv3, convert_ghostnetv3_state_dict, load_ghostnetv3_source
from .reparameterized import build_reparameterized
from .structured import build_structured_backbone

__all__ = ['GhostNetV3', 'build_reparameterized', 'build_structured_backbone', 'convert_and_verify_ghostnetv3',
           'convert_ghostnetv3_state_dict', 'load_ghostnetv3_source']
