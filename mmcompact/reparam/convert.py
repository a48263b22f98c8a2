"""Re-parameterize any existing backbone: its conv + BatchNorm pairs become multi-branch ``RepConvBN``
modules for training and fold back into exactly the original modules for deployment.

Pairs are found by running the backbone once with forward hooks: a BatchNorm whose input is the very
tensor a Conv2d produced forms a pair with that conv (dense or depthwise, any kernel, stride, groups).
The original conv + BN become branch 0 and the extra branches start with zero BN scales, so a
(pretrained) backbone starts from exactly its own function; the conversion checks that on the probe
input and refuses otherwise (e.g. when a conv's pre-BN output is also used elsewhere).
"""
import fnmatch
from typing import List, Optional, Sequence, Tuple, Union

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from .fuse import FoldError
from .modules import RepConvBN
from .reparameterize import max_abs_diff


class RepConvBNPair(RepConvBN):
    """A ``RepConvBN`` standing in for an original (conv, BN) pair of a backbone. ``switch_to_deploy()``
    puts a plain conv (the original geometry) and a plain BN (the original type) back in their places,
    holding the folded kernel and bias, so the folded backbone has the original modules and keys."""

    def attach(self, conv_slot: Tuple[nn.Module, str], bn_slot: Tuple[nn.Module, str],
               conv_bias: bool, bn: _BatchNorm) -> None:
        # Plain attributes (not submodules): references to the parents, for folding back.
        self.__dict__['_slots'] = (conv_slot, bn_slot)
        self.__dict__['_bn_spec'] = (type(bn), dict(num_features=bn.num_features, eps=bn.eps,
                                                    momentum=bn.momentum, affine=bn.affine))
        self.__dict__['_conv_bias'] = conv_bias

    def switch_to_deploy(self) -> None:
        if self.deploy:
            return
        if self.training:
            super().switch_to_deploy()  # raises the training-mode FoldError
        kernel, bias = self.kernel_bias()
        like = self.branches[0].conv
        conv = nn.Conv2d(like.in_channels, like.out_channels, like.kernel_size, like.stride, like.padding,
                         groups=like.groups, bias=self._conv_bias, device=like.weight.device,
                         dtype=like.weight.dtype)
        bn_type, bn_args = self._bn_spec
        bn = bn_type(**bn_args).to(device=like.weight.device, dtype=like.weight.dtype).eval()
        requires_grad = any(p.requires_grad for p in self.parameters())
        with torch.no_grad():
            conv.weight.copy_(kernel.to(conv.weight.dtype))
            if conv.bias is not None:
                conv.bias.zero_()
            # BN as the identity plus the folded bias: (y - 0) / sqrt(1 + eps) * sqrt(1 + eps) + bias
            bn.running_mean.zero_()
            bn.running_var.fill_(1.0)
            if bn.affine:
                bn.weight.copy_(torch.full_like(bias, 1 + bn.eps).sqrt().to(bn.weight.dtype))
                bn.bias.copy_(bias.to(bn.bias.dtype))
            elif bias.abs().max() > 0:
                raise FoldError('the original BatchNorm has no affine parameters to hold the folded bias')
        conv.requires_grad_(requires_grad)
        bn.requires_grad_(requires_grad)
        (conv_parent, conv_name), (bn_parent, bn_name) = self._slots
        setattr(conv_parent, conv_name, conv)
        setattr(bn_parent, bn_name, bn)
        self.deploy = True


def find_conv_bn_pairs(model: nn.Module, input_shape: Sequence[int]) -> List[Tuple[str, str]]:
    """(conv path, BN path) of every BatchNorm fed directly by a Conv2d in one forward pass (eval mode)."""
    produced, consumed, calls, hooks, keep = {}, [], {}, [], []

    def on_conv(name):
        def hook(module, args, output):
            calls[name] = calls.get(name, 0) + 1
            produced[id(output)] = name
            keep.append(output)  # keep tensors alive so that ids stay unique
        return hook

    def on_bn(name):
        def hook(module, args, output):
            calls[name] = calls.get(name, 0) + 1
            consumed.append((name, id(args[0])))
        return hook

    for name, module in model.named_modules():
        if type(module) is nn.Conv2d:
            hooks.append(module.register_forward_hook(on_conv(name)))
        elif isinstance(module, _BatchNorm):
            hooks.append(module.register_forward_hook(on_bn(name)))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(*input_shape, device=next(model.parameters()).device))
    finally:
        for handle in hooks:
            handle.remove()
        model.train(was_training)
    return [(produced[tensor_id], bn) for bn, tensor_id in consumed
            if tensor_id in produced and calls[bn] == 1 and calls[produced[tensor_id]] == 1]


def _zeros_like(output):
    if isinstance(output, torch.Tensor):
        return torch.zeros_like(output)
    if isinstance(output, dict):
        return {k: _zeros_like(v) for k, v in output.items()}
    return type(output)(_zeros_like(v) for v in output)


def _slot(model: nn.Module, path: str) -> Tuple[nn.Module, str]:
    parent, _, name = path.rpartition('.')
    return (model.get_submodule(parent) if parent else model), name


def _selected(path: str, include: Optional[Sequence[str]], exclude: Optional[Sequence[str]]) -> bool:
    if include and not any(fnmatch.fnmatchcase(path, p) for p in include):
        return False
    return not (exclude and any(fnmatch.fnmatchcase(path, p) for p in exclude))


@torch.no_grad()
def unfold_conv_bn_pairs(model: nn.Module, num_branches: int = 3, scale_branch: bool = True,
                         identity_branch: bool = True, include: Optional[Sequence[str]] = None,
                         exclude: Optional[Sequence[str]] = None, input_shape: Sequence[int] = (1, 3, 224, 224),
                         moment_fusion: Union[bool, str] = 'auto') -> List[str]:
    """Unfold (the inverse of folding): replace each selected conv+BN pair of ``model`` by a
    ``RepConvBNPair`` with extra training branches (in place); ``reparameterize_model`` folds it back.

    ``include``/``exclude``: fnmatch patterns on conv paths (e.g. ``['layer1.*']``). Dilated convs and
    non-zero padding modes are left as they are. ``moment_fusion``: see ``RepConvBN``. Returns the converted
    conv paths. Raises FoldError if the converted model does not compute the original function on the
    probe input.
    """
    probe = torch.randn(*input_shape, generator=torch.Generator().manual_seed(0)).to(
        next(model.parameters()).device)
    was_training = model.training
    model.eval()
    expected = model(probe)
    converted = []
    for conv_path, bn_path in find_conv_bn_pairs(model, input_shape):
        conv, bn = model.get_submodule(conv_path), model.get_submodule(bn_path)
        if (not _selected(conv_path, include, exclude) or conv.dilation != (1, 1)
                or conv.padding_mode != 'zeros' or isinstance(conv.padding, str)
                or conv.kernel_size[0] % 2 == 0 or conv.kernel_size[1] % 2 == 0):
            continue
        rep = RepConvBNPair(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride,
                            conv.padding, conv.groups, num_branches=num_branches,
                            scale_branch=scale_branch, identity_branch=identity_branch,
                            norm_cfg=dict(type='SyncBN' if isinstance(bn, nn.SyncBatchNorm) else 'BN'),
                            moment_fusion=moment_fusion)
        rep.to(device=conv.weight.device, dtype=conv.weight.dtype).eval()  # like the model, for now
        first = rep.branches[0]
        first.conv.weight.copy_(conv.weight)
        first.bn.load_state_dict(bn.state_dict())
        first.bn.eps, first.bn.momentum = bn.eps, bn.momentum
        if conv.bias is not None:  # a biased conv before BN: fold its bias into the running mean
            first.bn.running_mean.sub_(conv.bias)
        extra = [branch.bn for branch in rep.branches[1:]]
        extra += [rep.scale.bn] if rep.scale is not None else []
        extra += [rep.identity] if rep.identity is not None else []
        for norm in extra:  # new branches start silent: the model keeps its function
            norm.weight.zero_()
            norm.bias.zero_()
        rep.attach(_slot(model, conv_path), _slot(model, bn_path), conv.bias is not None, bn)
        rep.requires_grad_(conv.weight.requires_grad)
        parent, name = _slot(model, conv_path)
        setattr(parent, name, rep)
        parent, name = _slot(model, bn_path)
        setattr(parent, name, nn.Identity())
        converted.append(conv_path)
    # Relative to the output's magnitude: randomly initialised backbones can have huge activations.
    scale = max(1e-6, max_abs_diff(expected, _zeros_like(expected)))
    diff = max_abs_diff(expected, model(probe)) / scale
    model.train(was_training)
    if diff > 1e-4:
        raise FoldError(f're-parameterizing changed the model output (relative difference {diff:.3g}): a '
                        "converted conv's pre-BN output must be used elsewhere; exclude it (exclude=[...])")
    return converted
