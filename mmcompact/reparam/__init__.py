"""Re-parameterization: the one fold mechanism (math, blocks, model walker)."""
from .convert import RepConvBNPair, find_conv_bn_pairs, unfold_conv_bn_pairs
from .fuse import FoldError, fuse_conv_bn_weights, identity_kernel, pad_kernel
from .modules import ConvBN, RepConvBN, set_moment_fusion
from .reparameterize import deploy_form, foldable_modules, fuse_conv_bn_pairs, max_abs_diff, reparameterize_model

__all__ = [
    'FoldError', 'fuse_conv_bn_weights', 'identity_kernel', 'pad_kernel', 'ConvBN', 'RepConvBN',
    'deploy_form', 'foldable_modules', 'fuse_conv_bn_pairs', 'max_abs_diff', 'reparameterize_model',
    'RepConvBNPair', 'find_conv_bn_pairs', 'unfold_conv_bn_pairs', 'set_moment_fusion'
]
