"""Model-level folding: the walker every tool, hook and backbone uses.

A module is *re-parameterizable* when it has ``switch_to_deploy()`` (mmcompact's blocks, and mmpretrain's
RepVGG/MobileOne-style blocks, which follow the same convention) and is not yet deployed
(``deploy`` attribute false or absent).
"""
import copy
from typing import List

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from ..utils import eval_copy
from .fuse import FoldError, check_foldable_norm, fuse_conv_bn_weights
from .modules import make_folded_conv


def _post_order(module: nn.Module, prefix: str = ''):
    """(path, module) pairs, children before their parent, so composite modules see folded children."""
    for name, child in module.named_children():
        yield from _post_order(child, f'{prefix}.{name}' if prefix else name)
    yield prefix, module


def _needs_fold(module: nn.Module) -> bool:
    return callable(getattr(module, 'switch_to_deploy', None)) and not getattr(module, 'deploy', False)


def foldable_modules(model: nn.Module) -> List[str]:
    """Paths of the outermost modules ``reparameterize_model`` would fold (a RepConvBN, not also its
    branches); empty: nothing to fold."""
    paths: List[str] = []
    for name, module in model.named_modules():
        if _needs_fold(module) and not any(name.startswith(f'{p}.') or not p for p in paths):
            paths.append(name)
    return paths


def reparameterize_model(model: nn.Module, inplace: bool = True, fuse_conv_bn: bool = False) -> nn.Module:
    """Fold every re-parameterizable module of ``model`` (any nn.Module tree) into its deploy form.

    The model must be in eval mode (folding uses BN running statistics). Idempotent: a folded model is
    returned unchanged. Parameters stay trainable (their ``requires_grad`` is kept). mmcompact's ``ConvBN``
    is always fused (it has ``switch_to_deploy``). With ``fuse_conv_bn=True`` other libraries' conv +
    BatchNorm pairs are folded too: mmcv ``ConvModule`` with norm after conv, and a Conv2d directly followed by
    a BatchNorm inside an ``nn.Sequential``; other pairs are left alone, since their order in ``forward`` is
    not known.
    Raises ``FoldError`` naming the module path when a module cannot be folded exactly.
    """
    if not inplace:
        model = copy.deepcopy(model)
    in_training = [name or '<model>' for name, m in model.named_modules() if _needs_fold(m) and m.training]
    if in_training:
        raise FoldError(
            f'cannot fold {len(in_training)} module(s) in training mode (first: {in_training[0]}): folding '
            'uses BatchNorm running statistics. Call model.eval() first, or pass inplace=False to fold a '
            'copy after putting it in eval mode.')
    # Children fold before their parents (a backbone's ``deploy`` is derived from its blocks'); outer
    # modules may rebuild their children, so the pending ones are looked up again after every fold.
    while True:
        name, module = next(((n, m) for n, m in _post_order(model) if _needs_fold(m)), (None, None))
        if module is None:
            break
        try:
            module.switch_to_deploy()
        except FoldError as err:
            raise FoldError(f"'{name or '<model>'}' ({type(module).__name__}): {err}") from err
        if _needs_fold(module):  # a foreign module that does not record that it is deployed
            module.deploy = True
    if fuse_conv_bn:
        fuse_conv_bn_pairs(model)
    return model


def deploy_form(model: nn.Module) -> nn.Module:
    """The network as it ships, built on an eval-mode copy (``model`` is kept): every re-parameterizable
    module folded and every conv + BatchNorm pair of known order fused (see ``reparameterize_model``). The
    one definition of "deploy form": params/FLOPs are counted on it (flops tool, structure cost table) and
    ONNX export writes it."""
    return reparameterize_model(eval_copy(model), fuse_conv_bn=True)


def fuse_conv_bn_pairs(model: nn.Module) -> nn.Module:
    """Fold conv + BatchNorm pairs whose order is known (see ``reparameterize_model``), in place."""
    from mmcv.cnn import ConvModule
    for name, module in list(model.named_modules()):
        if (isinstance(module, ConvModule) and module.with_norm and module.order.index('conv')
              < module.order.index('norm') and isinstance(module.norm, _BatchNorm)):
            if module.norm.training:
                raise FoldError(f"'{name}' is in training mode: call model.eval() before fusing conv+BN.")
            kernel, bias = fuse_conv_bn_weights(module.conv.weight, module.conv.bias, module.norm)
            module.conv = make_folded_conv(module.conv, kernel, bias, module.conv.weight.requires_grad)
            setattr(module, module.norm_name, nn.Identity())
            module.with_norm = False
        elif isinstance(module, nn.Sequential):
            children = list(module._modules.items())
            for (conv_key, conv), (bn_key, bn) in zip(children, children[1:]):
                if (type(conv) is nn.Conv2d and isinstance(bn, _BatchNorm)
                        and bn.num_features == conv.out_channels):
                    check_foldable_norm(bn, f'{name}.{bn_key}')
                    if bn.training:
                        raise FoldError(f"'{name}.{bn_key}' is in training mode: call model.eval() first.")
                    kernel, bias = fuse_conv_bn_weights(conv.weight, conv.bias, bn)
                    module._modules[conv_key] = make_folded_conv(conv, kernel, bias,
                                                                 conv.weight.requires_grad)
                    module._modules[bn_key] = nn.Identity()
    return model


@torch.no_grad()
def max_abs_diff(a, b) -> float:
    """Largest absolute difference between two (nested) tensor outputs of the same structure."""
    if isinstance(a, torch.Tensor):
        return (a.double() - b.double()).abs().max().item() if a.numel() else 0.0
    if isinstance(a, dict):
        return max((max_abs_diff(a[k], b[k]) for k in a), default=0.0)
    if isinstance(a, (list, tuple)):
        if len(a) != len(b):
            raise ValueError(f'outputs differ in length: {len(a)} vs {len(b)}')
        return max((max_abs_diff(x, y) for x, y in zip(a, b)), default=0.0)
    raise TypeError(f'cannot compare outputs of type {type(a).__name__}')
