"""Re-parameterizable building blocks: a fusable conv-norm-act and the multi-branch conv-BN.

Both follow the OpenMMLab convention: ``deploy=True`` at construction builds the folded form directly (one
conv with bias), and ``switch_to_deploy()`` turns a trained training-form module into exactly that form, so
a folded checkpoint loads strictly into a deploy config.
"""
from typing import Optional, Tuple, Union

import torch
from mmcv.cnn import build_activation_layer, build_norm_layer
from torch import nn

from ..registry import MODELS
from .fuse import FoldError, KernelBias, check_foldable_norm, fuse_conv_bn_weights, identity_kernel, pad_kernel
from .moments import fused_branches, moments_apply

IntPair = Union[int, Tuple[int, int]]


def _pair(v: IntPair) -> Tuple[int, int]:
    return (v, v) if isinstance(v, int) else tuple(v)


def _check_moment_fusion(mode):
    if mode not in (True, False, 'auto'):
        raise ValueError(f"moment_fusion must be True, False or 'auto', got {mode!r}")
    return mode


def _require_eval(module: nn.Module) -> None:
    if module.training:
        raise FoldError(
            f'{type(module).__name__} is in training mode: folding uses the BatchNorm running statistics, '
            'while a module in training mode normalises with batch statistics, so the folded module would '
            'not compute the same function. Call model.eval() before folding (reparameterize_model(model, '
            'inplace=False) works on a copy if you want to keep training the original).')


def make_folded_conv(like: nn.Conv2d, kernel: torch.Tensor, bias: torch.Tensor,
                 requires_grad: bool) -> nn.Conv2d:
    """A Conv2d with ``like``'s geometry holding the folded (float64) kernel and bias in ``like``'s dtype."""
    conv = nn.Conv2d(like.in_channels, like.out_channels, like.kernel_size, like.stride, like.padding,
                     like.dilation, like.groups, bias=True, device=like.weight.device,
                     dtype=like.weight.dtype)
    with torch.no_grad():
        conv.weight.copy_(kernel.to(conv.weight.dtype))
        conv.bias.copy_(bias.to(conv.bias.dtype))
    conv.weight.requires_grad_(requires_grad)
    conv.bias.requires_grad_(requires_grad)
    return conv


@MODELS.register_module()
class ConvBN(nn.Module):
    """Conv2d (no bias) -> BatchNorm -> optional activation; (N, Cin, H, W) -> (N, Cout, H', W').

    ``deploy=True`` (or ``fuse_bn()``) gives a biased conv with the BatchNorm folded in: keys ``conv.weight``
    and ``conv.bias`` instead of ``conv.weight`` and ``bn.*``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntPair, stride: IntPair = 1,
                 padding: Optional[IntPair] = None, groups: int = 1,
                 norm_cfg: dict = dict(type='BN'), act_cfg: Optional[dict] = None,
                 deploy: bool = False):
        super().__init__()
        kernel_size = _pair(kernel_size)
        if padding is None:
            padding = (kernel_size[0] // 2, kernel_size[1] // 2)
        self.deploy = deploy
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, groups=groups,
                              bias=deploy)
        self.bn = None if deploy else build_norm_layer(norm_cfg, out_channels)[1]
        self.act = build_activation_layer(act_cfg) if act_cfg else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        if self.bn is not None:
            x = self.bn(x)
        return self.act(x)

    def kernel_bias(self) -> KernelBias:
        """Float64 (kernel, bias) of conv + BN (eval-mode statistics)."""
        if self.bn is None:
            return self.conv.weight.double(), self.conv.bias.double()
        check_foldable_norm(self.bn)
        return fuse_conv_bn_weights(self.conv.weight, self.conv.bias, self.bn)

    def fuse_bn(self) -> None:
        """Fold the BatchNorm into the conv in place (no-op when already fused)."""
        if self.deploy:
            return
        _require_eval(self)
        kernel, bias = self.kernel_bias()
        self.conv = make_folded_conv(self.conv, kernel, bias, self.conv.weight.requires_grad)
        self.bn = None
        self.deploy = True

    switch_to_deploy = fuse_bn  # so that reparameterize_model leaves no BatchNorm of a ConvBN behind


@MODELS.register_module()
class RepConvBN(nn.Module):
    """Multi-branch re-parameterizable conv-BN; (N, Cin, H, W) -> (N, Cout, H', W').

    Training form: ``num_branches`` kxk conv-BN branches, plus a 1x1 conv-BN ``scale`` branch (added when
    ``scale_branch`` and the kernel is larger than 1x1) and a BN-only ``identity`` branch (added when
    ``identity_branch`` and Cin == Cout, stride 1, same padding), summed, then the activation.
    Deploy form: one kxk conv with bias (``fused``), then the activation. Both compute the same function
    in eval mode; ``switch_to_deploy()`` converts the first into the second.

    ``moment_fusion``: in training mode, compute 1x1 dense branches as one conv from the input's moments
    (``moments.fused_branches``; same outputs, gradients and running statistics up to float rounding).
    ``'auto'`` (default) uses it where it was measured faster (1x1, groups 1, Cin <= (branches - 1) * Cout,
    plain BatchNorm2d); ``True`` wherever it applies; ``False`` never.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntPair, stride: IntPair = 1,
                 padding: Optional[IntPair] = None, groups: int = 1, num_branches: int = 3,
                 scale_branch: bool = True, identity_branch: bool = True,
                 norm_cfg: dict = dict(type='BN'), act_cfg: Optional[dict] = None,
                 deploy: bool = False, moment_fusion: Union[bool, str] = 'auto'):
        super().__init__()
        self.moment_fusion = _check_moment_fusion(moment_fusion)
        if num_branches < 1:
            raise ValueError(f'num_branches must be >= 1, got {num_branches}')
        kernel_size, stride = _pair(kernel_size), _pair(stride)
        padding = (kernel_size[0] // 2, kernel_size[1] // 2) if padding is None else _pair(padding)
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.num_branches = num_branches
        # The 1x1 branch sees the same output grid when its padding is reduced by the kernel's half-width.
        scale_padding = (padding[0] - kernel_size[0] // 2, padding[1] - kernel_size[1] // 2)
        self.has_scale = scale_branch and kernel_size != (1, 1) and min(scale_padding) >= 0
        self.has_identity = (identity_branch and in_channels == out_channels and stride == (1, 1)
                             and padding == (kernel_size[0] // 2, kernel_size[1] // 2))
        self.deploy = deploy
        self.act = build_activation_layer(act_cfg) if act_cfg else nn.Identity()
        if deploy:
            self.fused = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding,
                                   groups=groups, bias=True)
            return
        self.branches = nn.ModuleList(
            ConvBN(in_channels, out_channels, kernel_size, stride, padding, groups, norm_cfg)
            for _ in range(num_branches))
        self.scale = ConvBN(in_channels, out_channels, 1, stride, scale_padding, groups,
                            norm_cfg) if self.has_scale else None
        self.identity = build_norm_layer(norm_cfg, out_channels)[1] if self.has_identity else None

    def _fuse_moments(self) -> bool:
        """The fused path computes training-mode BatchNorm: only when every branch's BN is in training mode
        (``norm_eval``, frozen stages and ``.eval()`` put the BNs, not this module, in eval mode)."""
        if not self.training or self.moment_fusion is False or self.num_branches < 2:
            return False
        if not all(getattr(branch.bn, 'training', False) for branch in self.branches):
            return False
        if self.moment_fusion == 'auto' and self.in_channels > (self.num_branches - 1) * self.out_channels:
            return False
        return moments_apply(self.branches)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.deploy:
            return self.act(self.fused(x))
        if self._fuse_moments():
            out = fused_branches(x, self.branches)
        else:
            out = self.branches[0](x)
            for branch in self.branches[1:]:
                out = out + branch(x)
        if self.scale is not None:
            out = out + self.scale(x)
        if self.identity is not None:
            out = out + self.identity(x)
        return self.act(out)

    def kernel_bias(self) -> KernelBias:
        """Float64 (kernel, bias) of the single conv equal to all branches summed (eval mode)."""
        if self.deploy:
            return self.fused.weight.double(), self.fused.bias.double()
        kernel, bias = self.branches[0].kernel_bias()
        for branch in self.branches[1:]:
            k, b = branch.kernel_bias()
            kernel, bias = kernel + k, bias + b
        if self.scale is not None:
            k, b = self.scale.kernel_bias()
            kernel, bias = kernel + pad_kernel(k, self.kernel_size), bias + b
        if self.identity is not None:
            check_foldable_norm(self.identity)
            eye = identity_kernel(self.out_channels, self.groups, self.kernel_size, kernel.device)
            k, b = fuse_conv_bn_weights(eye, None, self.identity)
            kernel, bias = kernel + k, bias + b
        return kernel, bias

    def switch_to_deploy(self) -> None:
        """Fold every branch into ``self.fused`` in place; idempotent; trainable afterwards."""
        if self.deploy:
            return
        _require_eval(self)
        kernel, bias = self.kernel_bias()
        requires_grad = any(p.requires_grad for p in self.parameters())
        self.fused = make_folded_conv(self.branches[0].conv, kernel, bias, requires_grad)
        del self.branches, self.scale, self.identity
        self.deploy = True

    def extra_repr(self) -> str:
        return (f'{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, '
                f'stride={self.stride}, groups={self.groups}, deploy={self.deploy}, '
                f'branches={self.num_branches}, scale={self.has_scale}, identity={self.has_identity}, '
                f'moment_fusion={self.moment_fusion}')


def set_moment_fusion(model: nn.Module, mode: Union[bool, str]) -> int:
    """Set ``moment_fusion`` (True, False or 'auto') on every RepConvBN in ``model`` (including the
    RepConvBNPair modules of ``Reparameterized`` backbones); returns how many were set."""
    _check_moment_fusion(mode)
    modules = [m for m in model.modules() if isinstance(m, RepConvBN)]
    for module in modules:
        module.moment_fusion = mode
    return len(modules)
