"""Params and FLOPs accounting: the one counter used by every tool, table and the structure search.

FLOPs here are multiply-accumulates (MACs) of convolutions and linear/matmul ops, counted by tracing with
MMEngine's jit analysis with the op handles of ``mmengine.analysis.FlopAnalyzer`` (the counter mmdet's
get_flops uses) for those ops only, everything else (BN, pooling, upsampling, activations) uncounted:
the convention of the GhostNetV3 paper and most compact-model papers. BN is free in the deploy form
anyway, since it folds into the conv before it.
"""
import argparse
import logging
import math
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from mmengine.analysis.jit_analysis import JitModelAnalysis
from mmengine.analysis.jit_handles import (addmm_flop_jit, bmm_flop_jit, conv_flop_jit, einsum_flop_jit,
                                           linear_flop_jit, matmul_flop_jit)
from torch import nn

from ..reparam import deploy_form

# The ops counted and MMEngine's public handle for each (the ones its FlopAnalyzer uses for them).
MAC_HANDLES = {'aten::_convolution': conv_flop_jit, 'aten::addmm': addmm_flop_jit, 'aten::linear': linear_flop_jit,
               'aten::matmul': matmul_flop_jit, 'aten::mm': matmul_flop_jit, 'aten::bmm': bmm_flop_jit,
               'aten::einsum': einsum_flop_jit}
MAC_OPS = tuple(MAC_HANDLES)


@dataclass
class Complexity:
    """Totals and per-part figures of one model form at one input shape."""
    params: int
    macs: int
    part_params: Dict[str, int] = field(default_factory=dict)
    part_macs: Dict[str, int] = field(default_factory=dict)


def default_parts(model: nn.Module) -> List[str]:
    """Module paths to break a model down by: its top-level parts (the data preprocessor left out), each
    followed by its stages when it is the backbone of a detector/classifier or the model is a backbone."""
    backbone = getattr(model, 'backbone', None)
    if not isinstance(backbone, nn.Module):
        return _children_and_stages(model, '')
    parts = []
    for name, _ in model.named_children():
        if name == 'data_preprocessor':
            continue
        parts.append(name)
        if name == 'backbone':
            parts += _children_and_stages(backbone, 'backbone.')
    return parts


def _children_and_stages(module: nn.Module, prefix: str) -> List[str]:
    """Children of ``module``, with each ModuleList (a list of stages) expanded into its items."""
    parts = []
    for name, child in module.named_children():
        if isinstance(child, nn.ModuleList):
            parts += [f'{prefix}{name}.{i}' for i in range(len(child))]
        else:
            parts.append(f'{prefix}{name}')
    return parts


def _mac_analyzer(model: nn.Module, inputs: Tuple) -> JitModelAnalysis:
    analyzer = JitModelAnalysis(model, inputs)
    analyzer.set_op_handle(**MAC_HANDLES)
    analyzer.unsupported_ops_warnings(False)
    analyzer.uncalled_modules_warnings(False)
    analyzer.tracer_warnings('none')
    return analyzer


@torch.no_grad()
def count_complexity(model: nn.Module, input_shape: Sequence[int] = (1, 3, 224, 224),
                     parts: Optional[Sequence[str]] = None) -> Complexity:
    """Params and MACs of ``model`` (as it is: training or deploy form) for one input of ``input_shape``.

    ``model.forward(x)`` must accept a single tensor (true of backbones and of mmdet/mmpretrain models,
    whose default mode is 'tensor'). ``parts`` defaults to ``default_parts(model)``.
    """
    was_training = model.training
    model.eval()
    param = next(model.parameters(), None)
    x = torch.zeros(*input_shape, device=param.device if param is not None else None,
                    dtype=param.dtype if param is not None else None)
    # The tracer logs each unsupported op at WARNING through fvcore-style loggers; keep tool output clean.
    logger = logging.getLogger('mmengine')
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        analyzer = _mac_analyzer(model, (x, ))
        by_module = analyzer.by_module()
    finally:
        logger.setLevel(level)
        model.train(was_training)
    named = dict(model.named_modules())
    parts = default_parts(model) if parts is None else list(parts)
    missing = [p for p in parts if p not in named]
    if missing:
        raise KeyError(f'unknown module path(s) {missing} for the breakdown; valid examples: '
                       f'{list(named)[1:8]}')
    return Complexity(
        params=sum(p.numel() for p in model.parameters()),
        macs=int(by_module['']),
        part_params={p: sum(q.numel() for q in named[p].parameters()) for p in parts},
        part_macs={p: int(by_module.get(p, 0)) for p in parts})


def train_and_deploy_complexity(model: nn.Module, input_shape: Sequence[int] = (1, 3, 224, 224),
                                parts: Optional[Sequence[str]] = None) -> Tuple[Complexity, Complexity]:
    """(training form, deploy form) complexity; the deploy form is folded on a copy, ``model`` is kept."""
    train = count_complexity(model, input_shape, parts)
    deployed = deploy_form(model)
    return train, count_complexity(deployed, input_shape, train.part_params.keys())


def complexity_table(train: Complexity, deploy: Optional[Complexity] = None) -> List[List[str]]:
    """Rows (header first) of part / params / MACs, train and deploy side by side; last row: total."""
    def m(v: int) -> str:
        return f'{v / 1e6:.3f}M'

    header = ['part', 'params (train)', 'MACs (train)']
    if deploy is not None:
        header += ['params (deploy)', 'MACs (deploy)']
    rows = [header]
    for part in train.part_params:
        parent = next((p for p in train.part_params if part.startswith(p + '.')), None)
        label = '  ' + part[len(parent) + 1:] if parent else part
        row = [label, m(train.part_params[part]), m(train.part_macs[part])]
        if deploy is not None:
            row += [m(deploy.part_params[part]), m(deploy.part_macs[part])]
        rows.append(row)
    total = ['total', m(train.params), m(train.macs)]
    if deploy is not None:
        total += [m(deploy.params), m(deploy.macs)]
    rows.append(total)
    return rows


def format_table(rows: List[List[str]], total_row: bool = True) -> str:
    """Plain-text table, header first, aligned columns (first left, others right); with ``total_row``
    the last row is set off by a rule."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for j, row in enumerate(rows):
        cells = [c.ljust(widths[i]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(row)]
        lines.append('  '.join(cells))
        if j == 0 or (total_row and j == len(rows) - 2):
            lines.append('  '.join('-' * w for w in widths))
    return '\n'.join(lines)


class AmountError(argparse.ArgumentTypeError, ValueError):
    """Not a usable amount (argparse shows the message as it is)."""


def parse_amount(text: str) -> float:
    """'40M', '2.5M', '150k', '1.2G' or a plain number -> float; finite and > 0, or ``AmountError``."""
    scale = {'K': 1e3, 'M': 1e6, 'G': 1e9}
    text = str(text).strip().upper()
    try:
        value = float(text[:-1]) * scale[text[-1]] if text and text[-1] in scale else float(text)
    except ValueError:
        raise AmountError(f'{text!r} is not an amount such as 40M, 2.5M or 150000000') from None
    if not (math.isfinite(value) and value > 0):
        raise AmountError(f'{text!r} is not a positive finite amount: give a budget such as 40M')
    return value
