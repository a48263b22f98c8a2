"""Candidate blocks of the structure search: what one teacher block (a stage, or a single block) may be
replaced by in the student.

Contract of a candidate type registered in ``CANDIDATES``: ``cls(in_channels, out_channels, stride,
**options)`` builds a module mapping (N, in_channels, H, W) -> (N, out_channels, H / stride, W / stride),
i.e. it keeps the block's interface, so any combination of candidates assembles into a working backbone.
A type that derives from the teacher's block instead (``Keep``, ``Skip``) defines a classmethod
``from_block(block, interface, **options)``. ``applicable(interface, block, **options)`` (optional) returns
None or the reason the candidate cannot replace that block (e.g. a skip where the stride is 2).
Any spec may add ``output_affine=True``: the block is followed by a per-channel affine (``OutputAffine``),
which the search adds to every trained candidate. Every type takes ``deploy``: build directly what
``reparameterize_model`` makes of it (re-param branches folded, conv-BN pairs fused), so a folded checkpoint
loads strictly.
"""
import copy
import inspect
from dataclasses import asdict, dataclass
from typing import Optional

import torch
from torch import nn

from ..registry import CANDIDATES
from ..reparam import ConvBN
from ..utils import make_divisible
from .backbones.ghostnetv3 import GhostBottleneckV3


@dataclass(frozen=True)
class Interface:
    """What a block must preserve: channels in and out, and its spatial stride."""
    in_channels: int
    out_channels: int
    stride: int

    def as_dict(self) -> dict:
        return asdict(self)


def check_options(name: str, **options) -> None:
    """Reject option values that would break the block interface or cannot build, naming the option."""
    for key, value in options.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f'{name}: {key} must be a number, got {value!r}')
        if key == 'kernel_size' and (not isinstance(value, int) or value < 1 or value % 2 == 0):
            raise ValueError(f'{name}: kernel_size must be an odd positive int (keeps the spatial size), '
                             f'got {value!r}')
        if key in ('num_blocks', 'num_branches') and (not isinstance(value, int) or value < 1):
            raise ValueError(f'{name}: {key} must be an int >= 1, got {value!r}')
        if key in ('expand_ratio', 'width_ratio') and not 0 < value <= 64:
            raise ValueError(f'{name}: {key} must be in (0, 64], got {value!r}')
        if key == 'se_ratio' and not 0 <= value < 1:
            raise ValueError(f'{name}: se_ratio must be in [0, 1), got {value!r}')


def _stack(make_block, interface: Interface, num_blocks: int) -> list:
    """``num_blocks`` blocks: the first changes channels/stride, the rest are out->out with stride 1."""
    return [make_block(interface.in_channels if i == 0 else interface.out_channels, interface.out_channels,
                       interface.stride if i == 0 else 1) for i in range(num_blocks)]


class InvertedResidualBlock(nn.Module):
    """MobileNetV2 block: [1x1 expand, ReLU6] -> kxk depthwise (stride), ReLU6 -> 1x1 project (+ input when
    the shape is kept)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, kernel_size: int,
                 expand_ratio: float, deploy: bool = False):
        super().__init__()
        hidden = make_divisible(in_channels * expand_ratio, 8) if expand_ratio != 1 else in_channels
        relu6 = dict(type='ReLU6')
        layers = [] if expand_ratio == 1 else [ConvBN(in_channels, hidden, 1, act_cfg=relu6, deploy=deploy)]
        layers += [ConvBN(hidden, hidden, kernel_size, stride, groups=hidden, act_cfg=relu6, deploy=deploy),
                   ConvBN(hidden, out_channels, 1, deploy=deploy)]
        self.conv = nn.Sequential(*layers)
        self.residual = stride == 1 and in_channels == out_channels

    def forward(self, x):
        return x + self.conv(x) if self.residual else self.conv(x)


@CANDIDATES.register_module()
class InvertedResidual(nn.Sequential):
    """``num_blocks`` MobileNetV2 inverted-residual blocks (kernel ``kernel_size``, expansion
    ``expand_ratio``)."""
    short_name = 'ir'

    def __init__(self, in_channels: int, out_channels: int, stride: int, kernel_size: int = 3,
                 expand_ratio: float = 6, num_blocks: int = 1, deploy: bool = False):
        check_options(type(self).__name__, kernel_size=kernel_size, expand_ratio=expand_ratio,
                      num_blocks=num_blocks)
        super().__init__(*_stack(
            lambda i, o, s: InvertedResidualBlock(i, o, s, kernel_size, expand_ratio, deploy),
            Interface(in_channels, out_channels, stride), num_blocks))


@CANDIDATES.register_module()
class DepthwiseSeparable(InvertedResidual):
    """``num_blocks`` depthwise-separable blocks: kxk depthwise, ReLU6 -> 1x1 (+ input when the shape is
    kept); an inverted residual without expansion."""
    short_name = 'dws'

    def __init__(self, in_channels: int, out_channels: int, stride: int, kernel_size: int = 3,
                 num_blocks: int = 1, deploy: bool = False):
        super().__init__(in_channels, out_channels, stride, kernel_size, 1, num_blocks, deploy)


class BasicResidualBlock(nn.Module):
    """ResNet basic block with hidden width ``width_ratio * out_channels``: kxk (stride), ReLU -> kxk
    (+ identity or 1x1 projection) -> ReLU."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, kernel_size: int,
                 width_ratio: float, deploy: bool = False):
        super().__init__()
        hidden = make_divisible(out_channels * width_ratio, 8)
        self.conv = nn.Sequential(
            ConvBN(in_channels, hidden, kernel_size, stride, act_cfg=dict(type='ReLU'), deploy=deploy),
            ConvBN(hidden, out_channels, kernel_size, deploy=deploy))
        self.shortcut = nn.Identity() if stride == 1 and in_channels == out_channels else \
            ConvBN(in_channels, out_channels, 1, stride, deploy=deploy)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.act(self.conv(x) + self.shortcut(x))


@CANDIDATES.register_module()
class BasicResidual(nn.Sequential):
    """``num_blocks`` ResNet basic blocks of hidden width ``width_ratio`` x out_channels (1.0: ResNet's)."""
    short_name = 'res'

    def __init__(self, in_channels: int, out_channels: int, stride: int, width_ratio: float = 1.0,
                 kernel_size: int = 3, num_blocks: int = 1, deploy: bool = False):
        check_options('BasicResidual', width_ratio=width_ratio, kernel_size=kernel_size, num_blocks=num_blocks)
        super().__init__(*_stack(
            lambda i, o, s: BasicResidualBlock(i, o, s, kernel_size, width_ratio, deploy),
            Interface(in_channels, out_channels, stride), num_blocks))


@CANDIDATES.register_module()
class GhostBlock(nn.Sequential):
    """``num_blocks`` GhostNetV3 bottlenecks (re-parameterizable: ``num_branches`` conv-BN branches in
    training, one conv each after folding), hidden width ``expand_ratio`` x out_channels."""
    short_name = 'ghost'

    def __init__(self, in_channels: int, out_channels: int, stride: int, kernel_size: int = 3,
                 expand_ratio: float = 3, se_ratio: float = 0.0, dfc: bool = True, num_branches: int = 3,
                 num_blocks: int = 1, deploy: bool = False):
        check_options('GhostBlock', kernel_size=kernel_size, expand_ratio=expand_ratio, se_ratio=se_ratio,
                      num_branches=num_branches, num_blocks=num_blocks)
        super().__init__(*_stack(
            lambda i, o, s: GhostBottleneckV3(
                i, make_divisible(o * expand_ratio), o, kernel_size, se_ratio, s, dfc=dfc,
                num_branches=num_branches, norm_cfg=dict(type='BN'), act_cfg=dict(type='ReLU'),
                deploy=deploy),
            Interface(in_channels, out_channels, stride), num_blocks))


@CANDIDATES.register_module()
class ConvStack(nn.Sequential):
    """A stem: ``num_convs`` kxk ConvBN-ReLU layers (stride on the first), hidden width ``hidden_ratio`` x
    out_channels. ``num_convs=3, hidden_ratio=0.5`` is mmpretrain's ``deep_stem`` (ResNetV1c/d) at any
    width."""
    short_name = 'conv'

    def __init__(self, in_channels: int, out_channels: int, stride: int, kernel_size: int = 3,
                 num_convs: int = 3, hidden_ratio: float = 0.5, deploy: bool = False):
        check_options('ConvStack', kernel_size=kernel_size, num_blocks=num_convs, width_ratio=hidden_ratio)
        hidden = make_divisible(out_channels * hidden_ratio, 8)
        widths = [in_channels] + [hidden] * (num_convs - 1) + [out_channels]
        super().__init__(*(ConvBN(widths[i], widths[i + 1], kernel_size, stride if i == 0 else 1,
                                  act_cfg=dict(type='ReLU'), deploy=deploy) for i in range(num_convs)))


@CANDIDATES.register_module()
class Keep:
    """The teacher's block itself (initialised from the teacher), or its first ``num_blocks`` repeats when
    the block is a stage (an nn.Sequential): fewer repeats of the teacher's own blocks."""
    short_name = 'keep'

    @staticmethod
    def applicable(interface: Interface, block: nn.Module, num_blocks: Optional[int] = None) -> Optional[str]:
        if num_blocks is None:
            return None
        check_options('Keep', num_blocks=num_blocks)
        if not isinstance(block, nn.Sequential):
            return f'num_blocks needs a stage (nn.Sequential), got {type(block).__name__}'
        if not 1 <= num_blocks < len(block):
            return f'num_blocks={num_blocks} is not fewer than the stage\'s {len(block)} repeats (and >= 1)'
        return None

    @classmethod
    def from_block(cls, block: nn.Module, interface: Interface, num_blocks: Optional[int] = None,
                   deploy: bool = False) -> nn.Module:
        """``block`` itself (not a copy: callers copy the teacher's), or its first ``num_blocks`` repeats."""
        reason = cls.applicable(interface, block, num_blocks)
        if reason:
            raise ValueError(f'Keep: {reason}')
        return block if num_blocks is None else nn.Sequential(*list(block)[:num_blocks])


@CANDIDATES.register_module()
class Skip:
    """No block at all (identity): only where the block keeps channels and has stride 1."""
    short_name = 'skip'
    any_width = True  # fits a narrowed interface too (unlike Keep, which is the teacher's block as it is)

    @staticmethod
    def applicable(interface: Interface, block: nn.Module) -> Optional[str]:
        if interface.stride != 1 or interface.in_channels != interface.out_channels:
            return (f'a skip needs stride 1 and equal channels, the block has stride {interface.stride} and '
                    f'{interface.in_channels} -> {interface.out_channels} channels')
        return None

    @classmethod
    def from_block(cls, block: nn.Module, interface: Interface, deploy: bool = False) -> nn.Module:
        reason = cls.applicable(interface, block)
        if reason:
            raise ValueError(f'Skip: {reason}')
        return nn.Identity()


class OutputAffine(nn.Module):
    """Per-channel ``x * weight + bias`` on (N, C, H, W): lets a candidate reach the scale of the teacher's
    features (often far from the unit scale its BatchNorms start at), initialised from data by the search."""

    def __init__(self, channels: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)


_ABBREVIATIONS = dict(kernel_size='k', expand_ratio='e', width_ratio='w', num_blocks='x', se_ratio='se',
                      num_branches='b', num_convs='n', hidden_ratio='h')


def candidate_label(spec: dict) -> str:
    """Short readable name of a candidate spec, e.g. ``ir k3 e6 x2`` or ``keep x1`` (the interface keys of an
    exported block spec are left to the caller, which shows them as ``in>out``)."""
    cls = CANDIDATES.get(spec['type'])
    name = getattr(cls, 'short_name', spec['type'])
    shown = sorted((k, v) for k, v in spec.items()
                   if k not in ('type', 'output_affine', 'in_channels', 'out_channels', 'stride'))
    options = [f'{_ABBREVIATIONS.get(k, k)}{v:g}' if isinstance(v, (int, float)) and not isinstance(v, bool)
               else f'{_ABBREVIATIONS.get(k, k)}={v}' for k, v in shown]
    return ' '.join([name] + options)


def candidate_options(spec: dict) -> dict:
    """``spec`` with every option of its candidate type, defaults filled in, without the interface keys,
    ``output_affine`` and ``deploy``: two specs that build the same candidate compare equal (their labels
    need not: a label shows only the options a spec states)."""
    parameters = inspect.signature(candidate_class(spec)).parameters.values()
    options = {p.name: p.default for p in parameters if p.default is not inspect.Parameter.empty}
    options.update(spec)
    return {k: v for k, v in options.items()
            if k not in ('in_channels', 'out_channels', 'stride', 'output_affine', 'deploy')}


def candidate_class(spec: dict):
    if not isinstance(spec, dict) or 'type' not in spec:
        raise TypeError(f"a candidate spec is a dict with a 'type' key, got {spec!r}")
    cls = CANDIDATES.get(spec['type'])
    if cls is None:
        raise KeyError(f"unknown candidate type {spec['type']!r}: registered types are "
                       f'{sorted(CANDIDATES.module_dict)} (register your own with '
                       '@mmcompact.registry.CANDIDATES.register_module())')
    return cls


def why_not_applicable(spec: dict, interface: Interface, block: nn.Module) -> Optional[str]:
    """None when ``spec`` can replace ``block``, else the reason."""
    cls = candidate_class(spec)
    check = getattr(cls, 'applicable', None)
    options = {k: v for k, v in spec.items() if k not in ('type', 'deploy', 'output_affine')}
    return check(interface, block, **options) if check else None


def build_candidate(spec: dict, interface: Interface, block: Optional[nn.Module] = None,
                    deploy: bool = False) -> nn.Module:
    """The module of candidate ``spec`` for a block with ``interface``; ``block`` is the (teacher's or base
    backbone's) module at that place, used by block-derived types and reused as is (copy it first)."""
    cls = candidate_class(spec)
    options = {k: v for k, v in spec.items() if k not in ('type', 'output_affine')}
    options.setdefault('deploy', deploy)
    accepted = inspect.signature(cls.from_block if hasattr(cls, 'from_block') else cls).parameters
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise KeyError(f"candidate {spec['type']} has no option(s) {unknown}; it takes "
                       f"{sorted(set(accepted) - {'block', 'interface', 'in_channels', 'out_channels', 'stride'})}")
    if hasattr(cls, 'from_block'):
        if block is None:
            raise ValueError(f"candidate {spec['type']} derives from the original block: pass it")
        module = cls.from_block(block, interface, **options)
    else:
        module = cls(**interface.as_dict(), **options)
    return nn.Sequential(module, OutputAffine(interface.out_channels)) if spec.get('output_affine') else module


def copy_block(block: nn.Module) -> nn.Module:
    """A trainable copy of a (frozen teacher) block."""
    return copy.deepcopy(block).requires_grad_(True)
