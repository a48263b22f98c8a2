from .ghostnetv3_head import GhostNetV3ClsHead

__all__ = ['GhostNetV3ClsHead']
