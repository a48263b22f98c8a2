"""Connectors: small trained adapters on the student side that make a student feature comparable with
the teacher's (channels and spatial size). They live in the distiller only and are dropped at export."""
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from mmcv.cnn import build_norm_layer
from torch import nn

from ..registry import MODELS

SPATIAL_MODES = (None, 'resize', 'pool')


def align_spatial(x: torch.Tensor, size: Sequence[int], mode: Optional[str]) -> torch.Tensor:
    """Bring (N, C, H, W) to (N, C, *size): bilinear 'resize', adaptive average 'pool', or None (as is)."""
    if mode not in SPATIAL_MODES:
        raise ValueError(f"spatial mode must be one of {SPATIAL_MODES}, got {mode!r}")
    if mode is None or tuple(x.shape[-2:]) == tuple(size):
        return x
    if mode == 'pool':
        return F.adaptive_avg_pool2d(x, size)
    return F.interpolate(x, size=size, mode='bilinear', align_corners=False)


@MODELS.register_module()
class ConvBNConnector(nn.Module):
    """1x1 conv + BN from the student's to the teacher's channels, then optional spatial alignment to the
    teacher map's size; (N, Cs, Hs, Ws) -> (N, Ct, Ht, Wt)."""

    def __init__(self, in_channels: int, out_channels: int, spatial: Optional[str] = None,
                 norm_cfg: dict = dict(type='BN')):
        super().__init__()
        if in_channels <= 0 or out_channels <= 0:
            raise ValueError(f'connector channels must be > 0, got {in_channels} -> {out_channels}')
        align_spatial(torch.zeros(1, 1, 1, 1), (1, 1), spatial)  # validates the mode early
        self.in_channels = in_channels
        self.conv = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.bn = build_norm_layer(norm_cfg, out_channels)[1]
        self.spatial = spatial

    def forward(self, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return align_spatial(self.bn(self.conv(x)), target.shape[-2:], self.spatial)


@MODELS.register_module()
class SpatialConnector(nn.Module):
    """Spatial alignment only (no parameters): 'resize' or 'pool' the student map to the teacher's size."""

    def __init__(self, spatial: str = 'resize'):
        super().__init__()
        align_spatial(torch.zeros(1, 1, 1, 1), (1, 1), spatial)
        self.spatial = spatial

    def forward(self, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return align_spatial(x, target.shape[-2:], self.spatial)
