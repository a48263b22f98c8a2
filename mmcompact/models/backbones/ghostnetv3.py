"""GhostNetV3 (Liu et al. 2024, arXiv 2404.11202): architecture of the official release and of timm.

Training form: every ghost-module conv and every stride-2 depthwise conv is a ``RepConvBN`` (3 kxk conv-BN
branches, plus 1x1 scale and BN identity branches where the official code has them). Deploy form
(``deploy=True`` or ``switch_to_deploy()``): each of those is one conv with bias, and so is every other
conv-BN pair (stem, shortcuts, DFC attention, stage 9): no BatchNorm is left, unlike the official and timm
deploy forms, whose checkpoints the converter fuses the same way.

Stages (``stages[i]``, stride of the output relative to the input in brackets, channels at 1.0x):
stem (2, 16) | 0 (2, 16) | 1 (4, 24) | 2 (4, 24) | 3 (8, 40) | 4 (8, 40) | 5 (16, 80) | 6 (16, 112) |
7 (32, 160) | 8 (32, 160) | 9: 1x1 conv (32, 960). Detection usually takes ``out_indices=(2, 4, 6, 9)``.
"""
import math
from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from ...registry import MODELS
from ...reparam import ConvBN, RepConvBN, reparameterize_model, set_moment_fusion
from ...utils import make_divisible

# [kernel, hidden, out, se_ratio, stride] per block, grouped into stages 0..8 (stage 9 is the 1x1 conv).
GHOSTNETV3_ARCH = (
    ((3, 16, 16, 0, 1), ),
    ((3, 48, 24, 0, 2), ),
    ((3, 72, 24, 0, 1), ),
    ((5, 72, 40, 0.25, 2), ),
    ((5, 120, 40, 0.25, 1), ),
    ((3, 240, 80, 0, 2), ),
    ((3, 200, 80, 0, 1), (3, 184, 80, 0, 1), (3, 184, 80, 0, 1), (3, 480, 112, 0.25, 1),
     (3, 672, 112, 0.25, 1)),
    ((5, 672, 160, 0.25, 2), ),
    ((5, 960, 160, 0, 1), (5, 960, 160, 0.25, 1), (5, 960, 160, 0, 1), (5, 960, 160, 0.25, 1)),
)
STEM_CHANNELS = 16
LAST_CHANNELS = 960


MIN_INPUT_SIZE = 33  # smallest size whose stride-32 maps the DFC attention can still pool (stem stride 2)


class SqueezeExcite(nn.Module):
    """Channel gate: GAP -> 1x1 reduce (bias) -> ReLU -> 1x1 expand (bias) -> hard sigmoid; shape kept."""

    def __init__(self, channels: int, reduced: int):
        super().__init__()
        self.conv_reduce = nn.Conv2d(channels, reduced, 1)
        self.conv_expand = nn.Conv2d(reduced, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = self.conv_expand(F.relu(self.conv_reduce(x.mean((2, 3), keepdim=True))))
        return x * F.hardsigmoid(gate)


class DFCAttention(nn.Module):
    """Decoupled fully-connected attention: (N, in, H, W) -> the (N, out, H // 2, W // 2) sigmoid gate that
    ``gate_product`` applies, nearest-upsampled, to the ghost module's output.

    avg_pool 2x2 -> 1x1 conv-BN -> (1, 5) depthwise conv-BN -> (5, 1) depthwise conv-BN -> sigmoid.
    """

    def __init__(self, in_channels: int, out_channels: int, norm_cfg: dict, deploy: bool = False):
        super().__init__()
        self.convs = nn.Sequential(
            ConvBN(in_channels, out_channels, 1, norm_cfg=norm_cfg, deploy=deploy),
            ConvBN(out_channels, out_channels, (1, 5), groups=out_channels, norm_cfg=norm_cfg, deploy=deploy),
            ConvBN(out_channels, out_channels, (5, 1), groups=out_channels, norm_cfg=norm_cfg, deploy=deploy))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.convs(F.avg_pool2d(x, kernel_size=2, stride=2)))


def gate_product(gated: torch.Tensor, gate: torch.Tensor, out: Optional[torch.Tensor] = None) -> torch.Tensor:
    """``gated`` (N, C, H, W) times ``gate`` (N, C, h, w) nearest-upsampled to (H, W) (any size, odd and
    non-square included), written into ``out`` when given (inference only)."""
    n, c, h, w = gate.shape
    height, width = gated.shape[-2:]
    if (height, width) != (2 * h, 2 * w) or (torch.is_grad_enabled() and gate.requires_grad):
        return torch.mul(gated, F.interpolate(gate, size=(height, width), mode='nearest'), out=out)
    # Inference at an exact 2x: the upsampling as a broadcast, each gate value meeting its 2x2 block (no
    # upsampled copy; measured faster on CPU, while its backward, a strided reduction, was slower).
    blocks = (n, c, h, 2, w, 2)
    product = torch.mul(gated.reshape(blocks), gate.view(n, c, h, 1, w, 1),
                        out=None if out is None else out.view(blocks))
    return product.reshape(n, c, height, width) if out is None else out


# Output size (elements) from which a ghost module writes its output in one pass at inference. Measured on a
# 2-core CPU, folded 1.0x at 224x224, two interleaved runs: 1.05-1.12x faster at batch 16, unchanged at
# batch 1 (writing the small maps in slices too cost 2-3% there).
ONE_PASS_MIN_ELEMENTS = 1 << 19


class GhostModuleV3(nn.Module):
    """Ghost module with re-parameterized convs; (N, Cin, H, W) -> (N, Cout, H, W).

    ``primary``: 1x1 conv to ceil(Cout/2) channels; ``cheap``: 3x3 depthwise conv on it (with scale and
    identity branches); output = concat(primary, cheap)[:, :Cout], times the DFC gate when ``dfc``, plus
    ``residual`` (N, Cout, H, W) when given (the bottleneck's shortcut). At inference (grad off) of large
    maps, the output is written in one pass, slice by slice: the same operations, bitwise the same result,
    without the concatenated intermediate.
    """

    def __init__(self, in_channels: int, out_channels: int, act_cfg: Optional[dict], dfc: bool,
                 num_branches: int, norm_cfg: dict, deploy: bool, extra_branches: bool = True):
        super().__init__()
        self.out_channels = out_channels
        init_channels = math.ceil(out_channels / 2)
        self.primary = RepConvBN(in_channels, init_channels, 1, num_branches=num_branches,
                                 scale_branch=False, identity_branch=False, norm_cfg=norm_cfg,
                                 act_cfg=act_cfg, deploy=deploy)
        self.cheap = RepConvBN(init_channels, init_channels, 3, groups=init_channels,
                               num_branches=num_branches, scale_branch=extra_branches,
                               identity_branch=extra_branches, norm_cfg=norm_cfg, act_cfg=act_cfg,
                               deploy=deploy)
        self.dfc = DFCAttention(in_channels, out_channels, norm_cfg, deploy) if dfc else None

    def forward(self, x: torch.Tensor, residual: Optional[torch.Tensor] = None) -> torch.Tensor:
        primary = self.primary(x)
        cheap = self.cheap(primary)
        gate = self.dfc(x) if self.dfc is not None else None
        n, _, height, width = primary.shape
        if torch.is_grad_enabled() or n * self.out_channels * height * width < ONE_PASS_MIN_ELEMENTS:
            out = torch.cat([primary, cheap], dim=1)[:, :self.out_channels]
            out = out if gate is None else gate_product(out, gate)
            return out if residual is None else out + residual
        layout = torch.channels_last if primary.is_contiguous(memory_format=torch.channels_last) \
            and not primary.is_contiguous() else torch.contiguous_format
        out = torch.empty((n, self.out_channels, height, width), dtype=primary.dtype, device=primary.device,
                          memory_format=layout)
        split = primary.shape[1]
        for part, lo, hi in ((primary, 0, split), (cheap[:, :self.out_channels - split], split, None)):
            target = out[:, lo:hi]
            if gate is not None:
                gate_product(part, gate[:, lo:hi], out=target)
                if residual is not None:
                    target.add_(residual[:, lo:hi])
            elif residual is not None:
                torch.add(part, residual[:, lo:hi], out=target)
            else:
                target.copy_(part)
        return out


class GhostBottleneckV3(nn.Module):
    """ghost1 (expand, ReLU, DFC) -> [stride-2 depthwise RepConvBN] -> [SE] -> ghost2 (project) + shortcut.

    The shortcut sum happens inside ghost2 (its ``residual``), so a hook on ghost2 sees the block output.
    """

    def __init__(self, in_channels: int, hidden_channels: int, out_channels: int, kernel_size: int,
                 se_ratio: float, stride: int, dfc: bool, num_branches: int, norm_cfg: dict,
                 act_cfg: dict, deploy: bool, extra_branches: bool = True):
        super().__init__()
        self.ghost1 = GhostModuleV3(in_channels, hidden_channels, act_cfg, dfc, num_branches, norm_cfg,
                                    deploy, extra_branches)
        self.dw = RepConvBN(hidden_channels, hidden_channels, kernel_size, stride,
                            groups=hidden_channels, num_branches=num_branches, scale_branch=extra_branches,
                            identity_branch=False, norm_cfg=norm_cfg, deploy=deploy) if stride > 1 else None
        self.se = SqueezeExcite(hidden_channels, make_divisible(hidden_channels * se_ratio)) \
            if se_ratio > 0 else None
        self.ghost2 = GhostModuleV3(hidden_channels, out_channels, None, False, num_branches, norm_cfg,
                                    deploy, extra_branches)
        if in_channels == out_channels and stride == 1:
            self.shortcut = nn.Identity()
        else:
            self.shortcut = nn.Sequential(
                ConvBN(in_channels, in_channels, kernel_size, stride, groups=in_channels,
                       norm_cfg=norm_cfg, deploy=deploy),
                ConvBN(in_channels, out_channels, 1, norm_cfg=norm_cfg, deploy=deploy))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.ghost1(x)
        if self.dw is not None:
            out = self.dw(out)
        if self.se is not None:
            out = self.se(out)
        return self.ghost2(out, residual=self.shortcut(x))


@MODELS.register_module()
class GhostNetV3(BaseModule):
    """GhostNetV3 backbone; (N, 3, H, W) -> tuple of the feature maps of ``out_indices``.

    Args:
        widen_factor: width multiplier (0.5, 0.75, 1.0, 1.3, 1.6 are the published ones).
        out_indices: stages whose outputs are returned (0..9, see the module docstring; -1 = stem).
            ``self.out_channels`` lists their channels, for neck configs.
        frozen_stages: -1 freezes nothing; k >= 0 freezes the stem and stages 0..k-1 (eval mode,
            ``requires_grad=False``).
        norm_eval: keep every BatchNorm in eval mode during training (detection fine-tuning).
        num_branches: kxk conv-BN branches of every re-parameterized conv (official: 3).
        extra_branches: the 1x1 scale and BN identity branches where the official code has them;
            ``num_branches=1, extra_branches=False`` is the plain (GhostNet-style) network, same deploy form.
        stem_stride: 2 (official) or 1 for small images (e.g. 28-32 px Fashion-MNIST): every map is twice
            as large, the output stride 16 instead of 32, and inputs from 17 px work.
        deploy: build the folded form directly, so folded checkpoints load strictly.
        moment_fusion: the fused training path of the 1x1 branches (``RepConvBN``): 'auto' (where it
            is faster), True or False. Same math either way.
    """

    def __init__(self, widen_factor: float = 1.0, out_indices: Sequence[int] = (9, ),
                 frozen_stages: int = -1, norm_eval: bool = False, num_branches: int = 3,
                 extra_branches: bool = True, norm_cfg: dict = dict(type='BN'),
                 act_cfg: dict = dict(type='ReLU', inplace=True), stem_stride: int = 2,
                 deploy: bool = False, moment_fusion: Union[bool, str] = 'auto',
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg)
        if isinstance(widen_factor, bool) or not isinstance(widen_factor, (int, float)) \
                or not 0 < widen_factor <= 8:
            raise ValueError(f'widen_factor must be a number in (0, 8], got {widen_factor!r}')
        if isinstance(out_indices, int) or not all(isinstance(i, int) for i in out_indices):
            raise TypeError(f'out_indices must be a sequence of stage indices, e.g. (9, ), got {out_indices!r}')
        if list(out_indices) != sorted(set(out_indices)):
            raise ValueError(f'out_indices must be increasing without repeats (outputs come in stage order), '
                             f'got {tuple(out_indices)}; e.g. {tuple(sorted(set(out_indices)))}')
        if not isinstance(frozen_stages, int) or not isinstance(num_branches, int) or num_branches < 1:
            raise ValueError(f'frozen_stages must be an int and num_branches an int >= 1, got {frozen_stages!r} '
                             f'and {num_branches!r}')
        if stem_stride not in (1, 2):
            raise ValueError(f'stem_stride must be 1 or 2, got {stem_stride!r}')
        num_stages = len(GHOSTNETV3_ARCH) + 1
        bad = [i for i in out_indices if not -1 <= i < num_stages]
        if bad:
            raise ValueError(f'out_indices {tuple(out_indices)} contains {bad}: valid stage indices are -1 '
                             f'(stem) to {num_stages - 1}')
        if not -1 <= frozen_stages <= num_stages:
            raise ValueError(f'frozen_stages must be in [-1, {num_stages}], got {frozen_stages}')
        self.widen_factor, self.out_indices = widen_factor, tuple(out_indices)
        self.frozen_stages, self.norm_eval = frozen_stages, norm_eval
        self.min_input_size = MIN_INPUT_SIZE if stem_stride == 2 else (MIN_INPUT_SIZE + 1) // 2

        stem_channels = channels = make_divisible(STEM_CHANNELS * widen_factor)
        self.stem = ConvBN(3, channels, 3, stem_stride, norm_cfg=norm_cfg, act_cfg=act_cfg, deploy=deploy)
        self.stage_channels = []
        self.stages = nn.ModuleList()
        block_index = 0
        for rows in GHOSTNETV3_ARCH:
            blocks = []
            for kernel, hidden, out, se_ratio, stride in rows:
                out = make_divisible(out * widen_factor)
                blocks.append(GhostBottleneckV3(
                    channels, make_divisible(hidden * widen_factor), out, kernel, se_ratio, stride,
                    dfc=block_index > 1, num_branches=num_branches, norm_cfg=norm_cfg,
                    act_cfg=act_cfg, deploy=deploy, extra_branches=extra_branches))
                channels = out
                block_index += 1
            self.stages.append(nn.Sequential(*blocks))
            self.stage_channels.append(channels)
        last = make_divisible(LAST_CHANNELS * widen_factor)
        self.stages.append(ConvBN(channels, last, 1, norm_cfg=norm_cfg, act_cfg=act_cfg, deploy=deploy))
        self.stage_channels.append(last)
        set_moment_fusion(self, moment_fusion)
        self.out_channels = tuple(stem_channels if i == -1 else self.stage_channels[i]
                                  for i in self.out_indices)
        self._freeze_stages()

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        if x.dim() != 4 or x.shape[1] != 3 or min(x.shape[-2:]) < self.min_input_size:
            raise ValueError(f'GhostNetV3 takes (N, 3, H, W) images with H, W >= {self.min_input_size} (its DFC '
                             f'attention pools the last maps 2x2), got {tuple(x.shape)}: resize the input '
                             '(e.g. the pipeline\'s Resize/RandomResizedCrop scale)')
        x = self.stem(x)
        outs = [x] if -1 in self.out_indices else []
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)

    def _freeze_stages(self) -> None:
        if self.frozen_stages < 0:
            return
        for module in [self.stem, *self.stages[:self.frozen_stages]]:
            module.eval()
            for param in module.parameters():
                param.requires_grad = False

    def train(self, mode: bool = True) -> 'GhostNetV3':
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for module in self.modules():
                if isinstance(module, _BatchNorm):
                    module.eval()
        return self

    @property
    def deploy(self) -> bool:
        """True when every re-parameterized conv is folded and every conv-BN fused (no BatchNorm left)."""
        return all(m.deploy for m in self.modules() if isinstance(m, (RepConvBN, ConvBN)))

    def switch_to_deploy(self) -> None:
        """Fold every re-parameterized conv (the model must be in eval mode); idempotent."""
        reparameterize_model(self)
