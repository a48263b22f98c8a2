"""The search space (blocks x applicable candidates) and its exact cost table."""
import copy
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Union

import torch
from mmengine.logging import MMLogger
from torch import nn

from ..analysis import count_complexity
from ..models.candidates import (Interface, Keep, build_candidate, candidate_class, candidate_label, copy_block,
                                 why_not_applicable)
from ..reparam import deploy_form
from ..utils import make_divisible, set_module
from .partition import Block, default_blocks, probe_blocks


@dataclass
class SearchSpace:
    """Blocks of the teacher backbone and, per block, the candidate specs that fit it.

    Without searchable widths every candidate keeps its block's interface. With them (``widths``: per
    boundary j = 0..B the selectable channel counts; boundary j < B is block j's input, boundary B the last
    block's output), ``interfaces[b][c]`` is candidate c's own (w_in, w_out, stride): it reads the first w_in
    channels of boundary b and writes the first w_out of boundary b + 1, in the channel order the search
    fixes from the teacher's data (``mmcompact.structure.search``)."""
    blocks: List[Block]
    menus: List[List[dict]]
    interfaces: Optional[List[List[Interface]]] = None
    widths: Optional[List[List[int]]] = None
    labels: List[List[str]] = field(init=False)

    def __post_init__(self):
        if self.interfaces is None:
            self.interfaces = [[block.interface] * len(menu) for block, menu in zip(self.blocks, self.menus)]
        self.labels = [[candidate_label(spec) + (f' {i.in_channels}>{i.out_channels}' if self.widths else '')
                        for spec, i in zip(menu, row)] for menu, row in zip(self.menus, self.interfaces)]

    @property
    def links(self) -> Optional[List[List[tuple]]]:
        """Per block and candidate, (width taken, width given), for the chain selection; None without
        searchable widths."""
        if not self.widths:
            return None
        return [[(i.in_channels, i.out_channels) for i in row] for row in self.interfaces]

    def block_spec(self, b: int, c: int) -> dict:
        """The ``StructuredBackbone`` spec of candidate c at block b (interface included)."""
        return dict(self.menus[b][c], **self.interfaces[b][c].as_dict())

    def is_teacher_block(self, b: int, c: int) -> bool:
        """Candidate c of block b is the teacher's block unchanged (frozen, not trained)."""
        return is_unchanged_teacher_block(self.menus[b][c])

    def build(self, b: int, c: int, teacher_backbone: nn.Module) -> nn.Module:
        """A fresh module of candidate c for block b (block-derived ones start as copies of the teacher's)."""
        return build_candidate(self.menus[b][c], self.interfaces[b][c],
                               copy_block(teacher_backbone.get_submodule(self.blocks[b].path)))

    def output_width(self, choice: Sequence[int]) -> int:
        """Channels of the backbone output of the structure ``choice``."""
        return self.interfaces[-1][choice[-1]].out_channels


def is_unchanged_teacher_block(spec: dict) -> bool:
    """``Keep`` with all repeats: exact already, so kept frozen rather than trained."""
    return candidate_class(spec) is Keep and spec.get('num_blocks') is None


def scaled_width(channels: int, ratio: float, divisor: int) -> int:
    """``ratio`` x ``channels`` rounded to ``divisor`` as the searchable widths round it, never above ``channels``."""
    return min(channels, make_divisible(channels * ratio, divisor))


def boundary_widths(blocks: Sequence[Block], widths: Optional[dict]) -> Optional[List[List[int]]]:
    """Selectable channels per boundary from ``structure_search.widths`` = ``dict(ratios=[...], divisor=8,
    search_output=True)``: each ratio of the teacher's width, rounded to ``divisor``, plus the teacher's own
    width; boundary 0 (the first block's input, e.g. the image) stays as it is, and so does the last block's
    output with ``search_output=False`` (e.g. a detector's neck)."""
    if widths is None:
        return None
    unknown = set(widths) - {'ratios', 'divisor', 'search_output'}
    ratios, divisor = widths.get('ratios'), widths.get('divisor', 8)
    if unknown or not ratios or any(not 0 < r <= 1 for r in ratios) or not isinstance(divisor, int) or divisor < 1:
        raise ValueError('structure_search.widths must be dict(ratios=[r in (0, 1], ...], divisor=<int >= 1>, '
                         f'search_output=<bool>), got {widths}')
    for prev, block in zip(blocks, blocks[1:]):
        if prev.interface.out_channels != block.interface.in_channels:
            raise ValueError(f'structure_search.widths: {prev.path} gives {prev.interface.out_channels} channels '
                             f'but {block.path} takes {block.interface.in_channels}; searchable widths need '
                             'consecutive blocks (only channel-wise layers such as pooling between them)')
    channels = [blocks[0].interface.in_channels] + [block.interface.out_channels for block in blocks]
    result = [[channels[0]]]
    for j, c in enumerate(channels[1:], 1):
        if j == len(blocks) and not widths.get('search_output', True):
            result.append([c])
        else:
            result.append(sorted({scaled_width(c, r, divisor) for r in ratios} | {c}))
    return result


def build_search_space(backbone: nn.Module, input_shape: Sequence[int],
                       candidates: Union[List[dict], Dict[str, List[dict]]],
                       blocks: Sequence[str] = None, output_affine: bool = True,
                       widths: Optional[dict] = None) -> SearchSpace:
    """Probe the blocks of ``backbone`` (default partition unless ``blocks``) at ``input_shape`` (C, H, W)
    and keep, per block, the candidates that fit it. ``candidates``: one menu for every block, or
    ``{block path: menu}``. ``output_affine``: trained candidates end with a per-channel affine (see
    ``OutputAffine``). ``widths``: searchable widths between blocks (``boundary_widths``); then every
    candidate type built from its interface is offered at every (input, output) width pair, and the
    teacher-derived ones (``Keep``) at the teacher's widths only."""
    logger = MMLogger.get_current_instance()
    paths = list(blocks) if blocks else default_blocks(backbone)
    probed = probe_blocks(backbone, paths, input_shape)
    if isinstance(candidates, dict):
        missing = [p for p in paths if p not in candidates]
        if missing:
            raise KeyError(f'structure_search.candidates has no menu for block(s) {missing} '
                           f'(blocks: {paths})')
    choices = boundary_widths(probed, widths)
    menus, interfaces = [], []
    for b, block in enumerate(probed):
        menu = candidates[block.path] if isinstance(candidates, dict) else candidates
        teacher_block = backbone.get_submodule(block.path)
        pairs = [(i, o) for i in choices[b] for o in choices[b + 1]] if choices else \
            [(block.interface.in_channels, block.interface.out_channels)]
        kept, kept_interfaces = [], []
        for spec in menu:
            cls = candidate_class(spec)
            for w_in, w_out in pairs:
                interface = Interface(w_in, w_out, block.interface.stride)
                narrowed = interface != block.interface
                if narrowed and hasattr(cls, 'from_block') and not getattr(cls, 'any_width', False):
                    continue  # the teacher's own block has the teacher's widths only
                reason = why_not_applicable(spec, interface, teacher_block)
                if reason:
                    if not narrowed:
                        logger.info(f'structure search: {candidate_label(spec)} left out at {block.path}: '
                                    f'{reason}')
                    continue
                kept.append(dict(spec) if is_unchanged_teacher_block(spec) else dict(spec, output_affine=output_affine))
                kept_interfaces.append(interface)
        if not kept:
            raise ValueError(f'no candidate of the menu fits block {block.path} ({block.interface}): add '
                             "dict(type='Keep') to structure_search.candidates")
        menus.append(kept)
        interfaces.append(kept_interfaces)
    return SearchSpace(probed, menus, interfaces, choices)


def count_deployed(module: nn.Module, input_shape: Sequence[int]) -> Dict[str, int]:
    """MACs and params of the deploy form of ``module`` for one input of ``input_shape`` (C, H, W)."""
    result = count_complexity(deploy_form(module), (1, *input_shape), parts=[])
    return dict(macs=result.macs, params=result.params)


class _NeckAndHead(nn.Module):
    """neck + head of a classifier as one module taking the backbone's (single) output tensor."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.neck, self.head = getattr(model, 'neck', None), model.head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = (x, )
        if isinstance(self.neck, nn.Module):
            feats = self.neck(feats)
        return self.head(feats)


def narrow_head(model: nn.Module, channels: Sequence[int]) -> None:
    """Make ``model``'s head take only ``channels`` (indices) of the backbone output, in place: the first
    Linear of the head that reads the pooled features keeps those input columns. Classifiers only (a
    parameter-free neck such as global pooling, then a Linear head)."""
    head = getattr(model, 'head', None)
    linears = [(name, m) for name, m in head.named_modules() if isinstance(m, nn.Linear)] if \
        isinstance(head, nn.Module) else []
    neck = getattr(model, 'neck', None)
    if not linears or (isinstance(neck, nn.Module) and any(True for _ in neck.parameters())):
        raise ValueError(f'structure_search.widths: cannot narrow the head of {type(model).__name__} (only a '
                         'parameter-free neck and a Linear head can follow a searched output width); set '
                         'structure_search.widths.search_output=False to keep the backbone output width')
    name, linear = linears[0]
    index = torch.as_tensor(list(channels), dtype=torch.long)
    if len(index) == 0 or int(index.max()) >= linear.in_features:
        raise ValueError(f'cannot keep channels {list(channels)[:8]}... of head.{name}, which reads '
                         f'{linear.in_features} features')
    narrowed = nn.Linear(len(index), linear.out_features, bias=linear.bias is not None)
    with torch.no_grad():
        narrowed.weight.copy_(linear.weight[:, index])
        if linear.bias is not None:
            narrowed.bias.copy_(linear.bias)
    set_module(head, name, narrowed)


def head_costs(model: nn.Module, space: SearchSpace) -> Dict[int, Dict[str, int]]:
    """Per selectable output width w: the deploy cost of neck + head at w minus at the teacher's width
    (counted exactly on the narrowed head); ``{}`` when the output width is not searched."""
    last = space.blocks[-1]
    teacher_width = last.interface.out_channels
    if not space.widths or space.widths[-1] == [teacher_width]:
        return {}
    height, width = (v // last.interface.stride for v in last.input_shape[1:])
    base = count_deployed(_NeckAndHead(model), (teacher_width, height, width))
    result = {}
    for w in space.widths[-1]:
        narrowed = copy.deepcopy(model)
        narrow_head(narrowed, range(w))
        cost = count_deployed(_NeckAndHead(narrowed), (w, height, width))
        result[w] = {k: cost[k] - base[k] for k in cost}
    return result


def cost_table(model: nn.Module, space: SearchSpace, input_shape: Sequence[int]) -> dict:
    """Exact deploy-form costs: ``table[b][c]`` = {'macs', 'params'} of candidate c at block b, counted at
    its input shape (and, for the last block, plus the change of the head's cost at its output width);
    ``fixed`` = the rest of ``model`` (stem, other layers, neck, head), counted once as the whole teacher
    minus its blocks; ``teacher`` = the whole teacher. So a student costs exactly fixed + the sum of its
    chosen entries."""
    backbone = model.backbone
    teacher = count_deployed(model, input_shape)
    table, fixed = [], dict(teacher)
    heads = head_costs(model, space)
    for b, block in enumerate(space.blocks):
        own = count_deployed(backbone.get_submodule(block.path), block.input_shape)
        for key in fixed:
            fixed[key] -= own[key]
        row = []
        for c, interface in enumerate(space.interfaces[b]):
            cost = count_deployed(space.build(b, c, backbone), (interface.in_channels, *block.input_shape[1:]))
            if b == len(space.blocks) - 1 and heads:
                cost = {k: v + heads[interface.out_channels][k] for k, v in cost.items()}
            row.append(cost)
        table.append(row)
    return dict(teacher=teacher, fixed=fixed, table=table)


def assemble(model: nn.Module, space: SearchSpace, choice: Sequence[int],
             modules: Sequence[nn.Module] = None, head_channels: Optional[Sequence[int]] = None) -> nn.Module:
    """A copy of ``model`` whose backbone blocks are the chosen candidates: ``modules[b]`` when given (e.g.
    block-distilled ones, copied), else fresh ones. When the structure narrows the backbone output, the
    head keeps the teacher's weights of ``head_channels`` (default: the first channels)."""
    student = copy.deepcopy(model).requires_grad_(True)
    for b, c in enumerate(choice):
        module = copy.deepcopy(modules[b]) if modules is not None else space.build(b, c, model.backbone)
        set_module(student.backbone, space.blocks[b].path, module)
    width = space.output_width(choice)
    if width != space.blocks[-1].interface.out_channels:
        narrow_head(student, range(width) if head_channels is None else list(head_channels)[:width])
    return student
