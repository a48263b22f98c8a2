"""The search space (blocks x applicable candidates) and its exact cost table."""
import copy
from dataclasses import dataclass, field
from typing import Dict, List, Sequence, Union

from mmengine.logging import MMLogger
from torch import nn

from ..analysis import count_complexity
from ..reparam import deploy_form
from ..models.blocks import (Keep, build_candidate, candidate_class, candidate_label, copy_block,
                         why_not_applicable)
from ..utils import set_module
from .partition import Block, default_blocks, probe_blocks


@dataclass
class SearchSpace:
    """Blocks of the teacher backbone and, per block, the candidate specs that fit it."""
    blocks: List[Block]
    menus: List[List[dict]]
    labels: List[List[str]] = field(init=False)

    def __post_init__(self):
        self.labels = [[candidate_label(spec) for spec in menu] for menu in self.menus]

    def block_spec(self, b: int, c: int) -> dict:
        """The ``StructuredBackbone`` spec of candidate c at block b (interface included)."""
        return dict(self.menus[b][c], **self.blocks[b].interface.as_dict())

    def is_teacher_block(self, b: int, c: int) -> bool:
        """Candidate c of block b is the teacher's block unchanged (frozen, not trained)."""
        return is_unchanged_teacher_block(self.menus[b][c])

    def build(self, b: int, c: int, teacher_backbone: nn.Module) -> nn.Module:
        """A fresh module of candidate c for block b (block-derived ones start as copies of the teacher's)."""
        block = self.blocks[b]
        return build_candidate(self.menus[b][c], block.interface,
                               copy_block(teacher_backbone.get_submodule(block.path)))


def is_unchanged_teacher_block(spec: dict) -> bool:
    """``Keep`` with all repeats: exact already, so kept frozen rather than trained."""
    return candidate_class(spec) is Keep and spec.get('num_blocks') is None


def build_search_space(backbone: nn.Module, input_shape: Sequence[int],
                       candidates: Union[List[dict], Dict[str, List[dict]]],
                       blocks: Sequence[str] = None, output_affine: bool = True) -> SearchSpace:
    """Probe the blocks of ``backbone`` (default partition unless ``blocks``) at ``input_shape`` (C, H, W)
    and keep, per block, the candidates that fit it. ``candidates``: one menu for every block, or
    ``{block path: menu}``. ``output_affine``: trained candidates end with a per-channel affine (see
    ``OutputAffine``)."""
    logger = MMLogger.get_current_instance()
    paths = list(blocks) if blocks else default_blocks(backbone)
    probed = probe_blocks(backbone, paths, input_shape)
    if isinstance(candidates, dict):
        missing = [p for p in paths if p not in candidates]
        if missing:
            raise KeyError(f'structure_search.candidates has no menu for block(s) {missing} '
                           f'(blocks: {paths})')
    menus = []
    for block in probed:
        menu = candidates[block.path] if isinstance(candidates, dict) else candidates
        kept = []
        for spec in menu:
            reason = why_not_applicable(spec, block.interface, backbone.get_submodule(block.path))
            if reason:
                logger.info(f'structure search: {candidate_label(spec)} left out at {block.path}: {reason}')
            elif is_unchanged_teacher_block(spec):
                kept.append(dict(spec))
            else:
                kept.append(dict(spec, output_affine=output_affine))
        if not kept:
            raise ValueError(f'no candidate of the menu fits block {block.path} ({block.interface}): add '
                             "dict(type='Keep') to structure_search.candidates")
        menus.append(kept)
    return SearchSpace(probed, menus)


def count_deployed(module: nn.Module, input_shape: Sequence[int]) -> Dict[str, int]:
    """MACs and params of the deploy form of ``module`` for one input of ``input_shape`` (C, H, W)."""
    result = count_complexity(deploy_form(module), (1, *input_shape), parts=[])
    return dict(macs=result.macs, params=result.params)


def cost_table(model: nn.Module, space: SearchSpace, input_shape: Sequence[int]) -> dict:
    """Exact deploy-form costs: ``table[b][c]`` = {'macs', 'params'} of candidate c at block b, counted at
    the block's input shape; ``fixed`` = the rest of ``model`` (stem, other layers, neck, head), counted
    once as the whole teacher minus its blocks; ``teacher`` = the whole teacher. So a student costs exactly
    fixed + the sum of its chosen entries."""
    backbone = model.backbone
    teacher = count_deployed(model, input_shape)
    table, fixed = [], dict(teacher)
    for b, block in enumerate(space.blocks):
        own = count_deployed(backbone.get_submodule(block.path), block.input_shape)
        for key in fixed:
            fixed[key] -= own[key]
        table.append([count_deployed(space.build(b, c, backbone), block.input_shape)
                      for c in range(len(space.menus[b]))])
    return dict(teacher=teacher, fixed=fixed, table=table)


def assemble(model: nn.Module, space: SearchSpace, choice: Sequence[int],
             modules: Sequence[nn.Module] = None) -> nn.Module:
    """A copy of ``model`` whose backbone blocks are the chosen candidates: ``modules[b]`` when given (e.g.
    block-distilled ones, copied), else fresh ones."""
    student = copy.deepcopy(model).requires_grad_(True)
    for b, c in enumerate(choice):
        module = copy.deepcopy(modules[b]) if modules is not None else space.build(b, c, model.backbone)
        set_module(student.backbone, space.blocks[b].path, module)
    return student
