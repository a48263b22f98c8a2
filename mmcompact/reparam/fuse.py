"""Exact conv + BatchNorm folding math: the one implementation every block, tool and hook uses.

A BatchNorm in eval mode is the affine map ``y = g * (x - m) / s + b`` with ``s = sqrt(var + eps)``, so a
conv ``W * x + c`` followed by it equals a conv with kernel ``W * g / s`` and bias ``b + (c - m) * g / s``.
A BN-only branch is the same with ``W`` the identity kernel. All arithmetic runs in float64 and the result is
cast back to the source dtype, so folding adds no error beyond one final rounding.
"""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

KernelBias = Tuple[torch.Tensor, torch.Tensor]


class FoldError(RuntimeError):
    """A module cannot be folded exactly (norm type, training mode, geometry); the message says why."""


def check_foldable_norm(norm: nn.Module, path: str = '') -> None:
    """Raise FoldError unless ``norm`` is a BatchNorm with running statistics (it folds into a conv)."""
    where = f" at '{path}'" if path else ''
    if not isinstance(norm, _BatchNorm):
        raise FoldError(
            f'{type(norm).__name__}{where} cannot be folded into a convolution: only BatchNorm/SyncBatchNorm '
            f'(which normalise with fixed running statistics at inference) fold exactly. Use '
            f"norm_cfg=dict(type='BN') (or 'SyncBN') for re-parameterized branches.")
    if norm.running_mean is None or norm.running_var is None:
        raise FoldError(f'{type(norm).__name__}{where} has track_running_stats=False: there are no running '
                         'statistics to fold. Build it with track_running_stats=True.')


def bn_affine(bn: _BatchNorm) -> KernelBias:
    """(scale, shift) in float64 such that ``bn(x) == x * scale + shift`` in eval mode; shapes (C,), (C,)."""
    std = (bn.running_var.double() + bn.eps).sqrt()
    gamma = bn.weight.double() if bn.weight is not None else torch.ones_like(std)
    beta = bn.bias.double() if bn.bias is not None else torch.zeros_like(std)
    scale = gamma / std
    return scale, beta - bn.running_mean.double() * scale


def fuse_conv_bn_weights(kernel: torch.Tensor, conv_bias: Optional[torch.Tensor],
                         bn: _BatchNorm) -> KernelBias:
    """Fold ``bn`` into a conv kernel (O, I/g, kh, kw) and optional bias (O,); returns float64 tensors."""
    scale, shift = bn_affine(bn)
    fused_kernel = kernel.double() * scale.reshape(-1, *([1] * (kernel.dim() - 1)))
    fused_bias = shift if conv_bias is None else shift + conv_bias.double() * scale
    return fused_kernel, fused_bias


def identity_kernel(channels: int, groups: int, kernel_size: Tuple[int, int],
                    device=None) -> torch.Tensor:
    """The (C, C/groups, kh, kw) float64 kernel of a grouped conv that returns its input (odd kh, kw)."""
    kh, kw = kernel_size
    if kh % 2 == 0 or kw % 2 == 0:
        raise ValueError(f'an identity branch needs an odd kernel size, got {kernel_size}')
    per_group = channels // groups
    kernel = torch.zeros(channels, per_group, kh, kw, dtype=torch.float64, device=device)
    idx = torch.arange(channels, device=device)
    kernel[idx, idx % per_group, kh // 2, kw // 2] = 1.0
    return kernel


def pad_kernel(kernel: torch.Tensor, kernel_size: Tuple[int, int]) -> torch.Tensor:
    """Zero-pad a smaller odd kernel (centred) to ``kernel_size``; same-padding convs keep their output."""
    dh = kernel_size[0] - kernel.shape[-2]
    dw = kernel_size[1] - kernel.shape[-1]
    if dh < 0 or dw < 0 or dh % 2 or dw % 2:
        raise ValueError(f'cannot centre a {tuple(kernel.shape[-2:])} kernel in {tuple(kernel_size)}')
    return F.pad(kernel, [dw // 2, dw // 2, dh // 2, dh // 2])
