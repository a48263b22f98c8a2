"""Cutting a teacher backbone into blocks (module paths) and measuring each block's interface."""
from dataclasses import dataclass
from typing import List, Sequence, Tuple

import torch
from torch import nn

from ..models.backbones import GhostNetV3
from ..models.candidates import Interface
from ..utils import Recorder


def default_blocks(backbone: nn.Module) -> List[str]:
    """Stage paths of known backbones: ResNet-family ``layer1..4`` and MobileNetV2 ``layer1..7`` (mmdet and
    mmpretrain), ShuffleNetV2 ``layers.0..2``, GhostNetV3 ``stages.0..8``; the stem and last conv stay fixed.
    """
    if isinstance(backbone, GhostNetV3):
        return [f'stages.{i}' for i in range(len(backbone.stages) - 1)]
    if isinstance(getattr(backbone, 'res_layers', None), list):  # mmdet/mmpretrain ResNet family
        return list(backbone.res_layers)
    layers = getattr(backbone, 'layers', None)
    if isinstance(layers, list) and all(isinstance(n, str) for n in layers):  # MobileNetV2
        return [n for n in layers if n.startswith('layer')]
    if isinstance(layers, nn.ModuleList):  # mmpretrain ShuffleNetV2
        return [f'layers.{i}' for i in range(len(layers))]
    raise ValueError(f'no default block partition for {type(backbone).__name__}: list the block module paths in '
                     "structure_search.blocks (e.g. blocks=['layer1', 'layer2'])")


@dataclass(frozen=True)
class Block:
    """One searchable place of the backbone: its module path, interface and input shape (C, H, W) at the
    search's input size."""
    path: str
    interface: Interface
    input_shape: Tuple[int, int, int]


@torch.no_grad()
def probe_blocks(backbone: nn.Module, paths: Sequence[str], input_shape: Sequence[int]) -> List[Block]:
    """Interface and input shape of every block, from one forward pass of a zero input of ``input_shape``
    (C, H, W). Each block must take one (N, C, H, W) tensor and return one."""
    specs = {}
    for path in paths:
        specs[f'{path}:in'] = dict(module=path, kind='input')
        specs[f'{path}:out'] = path
    recorder = Recorder(backbone, specs, 'teacher backbone')
    was_training = backbone.training
    backbone.eval()
    param = next(backbone.parameters())
    try:
        with recorder.recording():
            backbone(torch.zeros(1, *input_shape, dtype=param.dtype, device=param.device))
            records = {name: recorder.get(name) for name in specs}
    finally:
        backbone.train(was_training)
    blocks = []
    for path in paths:
        x, y = records[f'{path}:in'], records[f'{path}:out']
        if not (isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor) and x.dim() == 4 and y.dim() == 4):
            raise TypeError(f"block '{path}' must map one (N, C, H, W) tensor to one; got "
                            f'{type(x).__name__} -> {type(y).__name__}: choose other block paths '
                            '(structure_search.blocks)')
        if x.shape[-1] % y.shape[-1] or x.shape[-2] // y.shape[-2] != x.shape[-1] // y.shape[-1]:
            raise ValueError(f"block '{path}' maps {tuple(x.shape)} to {tuple(y.shape)}: not an integer "
                             'stride; use an input_shape divisible by the network stride')
        interface = Interface(int(x.shape[1]), int(y.shape[1]), int(x.shape[-1] // y.shape[-1]))
        blocks.append(Block(path, interface, tuple(int(v) for v in x.shape[1:])))
    return blocks
