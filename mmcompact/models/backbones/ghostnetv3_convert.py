"""Convert official GhostNetV3 release files and timm ``ghostnetv3_*`` state dicts to mmcompact keys.

Output keys are those of an mmpretrain ``ImageClassifier`` with ``backbone=GhostNetV3`` and
``head=GhostNetV3ClsHead`` (``backbone.*``, ``head.*``), training form or deploy form as in the source (a
deploy-form source also gets its remaining conv-BN pairs fused, as mmcompact's deploy form has no BN).
Detectors use the same file through ``init_cfg=dict(type='Pretrained', checkpoint=..., prefix='backbone.')``.
"""
import os
import re
from typing import Callable, Dict, List, Tuple, Union

import torch

from ...checkpoint import safe_load, save_atomic
from ...reparam.fuse import fuse_conv_bn_weights
from ...utils import make_divisible
from .ghostnetv3 import LAST_CHANNELS, STEM_CHANNELS

Rule = Tuple[str, Union[str, Callable[[re.Match], str]]]


def _bn(name: str) -> str:  # official branch BNs are 'bn', timm's 'bn1'
    return 'bn' if name.startswith('bn') else name


# Rules for the part of a key after 'blocks.<stage>.<block>.'; first match wins.
_BLOCK_RULES: List[Rule] = [
    (r'^((?:ghost[12]\.)?)(primary|cheap|dw)_rpr_conv\.(\d+)\.(conv|bn1?)\.(.+)$',
     lambda m: f'{m[1]}{m[2]}.branches.{m[3]}.{_bn(m[4])}.{m[5]}'),
    (r'^((?:ghost[12]\.)?)(primary|cheap|dw)_rpr_scale\.(conv|bn1?)\.(.+)$',
     lambda m: f'{m[1]}{m[2]}.scale.{_bn(m[3])}.{m[4]}'),
    (r'^((?:ghost[12]\.)?)(primary|cheap|dw)_rpr_skip\.(.+)$', r'\1\2.identity.\3'),
    (r'^(ghost[12])\.primary_conv\.0\.(weight|bias)$', r'\1.primary.fused.\2'),
    (r'^(ghost[12])\.cheap_operation\.0\.(weight|bias)$', r'\1.cheap.fused.\2'),
    (r'^conv_dw\.(weight|bias)$', r'dw.fused.\1'),
    (r'^ghost1\.short_conv\.([024])\.weight$', lambda m: f'ghost1.dfc.convs.{int(m[1]) // 2}.conv.weight'),
    (r'^ghost1\.short_conv\.([135])\.(.+)$', lambda m: f'ghost1.dfc.convs.{int(m[1]) // 2}.bn.{m[2]}'),
    (r'^se\.(conv_reduce|conv_expand)\.(weight|bias)$', r'se.\1.\2'),
    (r'^shortcut\.([02])\.weight$', lambda m: f'shortcut.{int(m[1]) // 2}.conv.weight'),
    (r'^shortcut\.([13])\.(.+)$', lambda m: f'shortcut.{int(m[1]) // 2}.bn.{m[2]}'),
]
_TOP_RULES: List[Rule] = [
    (r'^conv_stem\.weight$', 'backbone.stem.conv.weight'),
    (r'^bn1\.(.+)$', r'backbone.stem.bn.\1'),
    (r'^blocks\.9\.0\.conv\.(.+)$', r'backbone.stages.9.conv.\1'),
    (r'^blocks\.9\.0\.bn1?\.(.+)$', r'backbone.stages.9.bn.\1'),
    (r'^conv_head\.(.+)$', r'head.conv_head.\1'),
    (r'^classifier\.(.+)$', r'head.fc.\1'),
]
# Counters that profiling tools (thop) leave in some released files; not weights.
_IGNORED = re.compile(r'(^|\.)(total_ops|total_params)$')


def _apply(rules: List[Rule], key: str):
    for pattern, repl in rules:
        new, n = re.subn(pattern, repl, key)
        if n:
            return new
    return None


def convert_ghostnetv3_state_dict(state_dict: Dict[str, torch.Tensor]
                                  ) -> Tuple[Dict[str, torch.Tensor], List[str]]:
    """Rename official/timm GhostNetV3 keys to mmcompact's (fusing the remaining conv-BN pairs of a
    deploy-form source); returns (converted, unrecognised keys)."""
    converted, unknown = {}, []
    for key, value in state_dict.items():
        key = key[len('module.'):] if key.startswith('module.') else key
        if _IGNORED.search(key):
            continue
        new = _apply(_TOP_RULES, key)
        if new is None:
            block = re.match(r'^blocks\.(\d+)\.(\d+)\.(.+)$', key)
            rest = _apply(_BLOCK_RULES, block[3]) if block else None
            new = f'backbone.stages.{block[1]}.{block[2]}.{rest}' if rest else None
        if new is None:
            unknown.append(key)
        else:
            converted[new] = value
    if any(k.endswith('.fused.weight') for k in converted):  # a deploy-form source
        converted = fuse_conv_bn_keys(converted)
    return converted, unknown


def fuse_conv_bn_keys(state_dict: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Fold every ``P.bn.*`` group into ``P.conv.weight`` (+ ``P.conv.bias``), as ``ConvBN.fuse_bn`` does:
    the official/timm deploy forms keep the BatchNorms of the stem, shortcuts, DFC and stage 9, mmcompact's
    deploy form has none. BN eps is PyTorch's default (1e-5), as in the official code."""
    from torch import nn

    out = dict(state_dict)
    for key in [k for k in state_dict if k.endswith('.bn.running_mean')]:
        prefix = key[:-len('bn.running_mean')]
        weight = out.pop(f'{prefix}conv.weight')
        bn = nn.BatchNorm2d(weight.shape[0])
        bn.load_state_dict({name: out.pop(f'{prefix}bn.{name}') for name in list(bn.state_dict())
                            if f'{prefix}bn.{name}' in out}, strict=False)
        kernel, bias = fuse_conv_bn_weights(weight, None, bn.eval())
        out[f'{prefix}conv.weight'], out[f'{prefix}conv.bias'] = kernel.to(weight.dtype), bias.to(weight.dtype)
    return out


def load_ghostnetv3_source(path: str, use_ema: bool = True) -> Dict[str, torch.Tensor]:
    """The state dict inside an official release file (``state_dict_ema`` by default) or a timm file."""
    checkpoint = safe_load(path, map_location='cpu')
    if not isinstance(checkpoint, dict):
        raise ValueError(f'{path} holds a {type(checkpoint).__name__}, not a state dict')
    wanted = 'state_dict_ema' if use_ema else 'state_dict'
    if wanted in checkpoint:
        return checkpoint[wanted]
    if use_ema and 'state_dict' in checkpoint:
        raise KeyError(f"{path} has no 'state_dict_ema' (keys: {sorted(checkpoint)[:10]}); "
                       "pass --no-ema to convert 'state_dict'")
    if any(isinstance(v, dict) for v in checkpoint.values()):
        raise KeyError(f"{path} has neither 'state_dict_ema' nor 'state_dict' "
                       f'(top-level keys: {sorted(checkpoint)[:10]})')
    return checkpoint  # a bare state dict, as timm saves it


def _infer_width(converted: Dict[str, torch.Tensor]) -> float:
    """Width multiplier from the stem's output channels (16 * width, rounded to a multiple of 4)."""
    stem = converted['backbone.stem.conv.weight'].shape[0]
    last = converted.get('backbone.stages.9.conv.weight')
    for width in (0.5, 0.75, 1.0, 1.3, 1.6, *(w / 20 for w in range(5, 61))):
        if make_divisible(STEM_CHANNELS * width) == stem and (
                last is None or make_divisible(LAST_CHANNELS * width) == last.shape[0]):
            return width
    raise ValueError(f'cannot infer the width multiplier from a stem of {stem} channels')


def convert_and_verify_ghostnetv3(src: str, out: str, use_ema: bool = True,
                                  overwrite: bool = False) -> dict:
    """Convert ``src``, load the result strictly into the matching mmcompact classifier, save ``out``.

    Unknown source keys and keys the model misses are both errors that list them by name.
    """
    from mmengine.registry import MODELS, DefaultScope

    if os.path.exists(out) and not overwrite:
        raise FileExistsError(f'{out} already exists; choose another output path or pass --force')
    converted, unknown = convert_ghostnetv3_state_dict(load_ghostnetv3_source(src, use_ema))
    if unknown:
        raise KeyError(f'{len(unknown)} key(s) of {src} are not GhostNetV3 keys: {unknown[:20]}')
    if 'backbone.stem.conv.weight' not in converted:
        raise KeyError(f'{src} has no stem weight (conv_stem.weight): is it a GhostNetV3 checkpoint?')
    width = _infer_width(converted)
    deploy = any(k.endswith('.fused.weight') for k in converted)
    num_classes, hidden = converted['head.fc.weight'].shape
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(dict(
            type='ImageClassifier',
            backbone=dict(type='mmcompact.GhostNetV3', widen_factor=width, deploy=deploy),
            neck=dict(type='GlobalAveragePooling'),
            head=dict(type='mmcompact.GhostNetV3ClsHead', num_classes=num_classes,
                      in_channels=converted['head.conv_head.weight'].shape[1], hidden_channels=hidden)))
    result = model.load_state_dict(converted, strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise KeyError(f'converted keys do not match GhostNetV3 {width}x: '
                       f'missing {result.missing_keys[:20]}, '
                       f'unexpected {result.unexpected_keys[:20]}')
    save_atomic(dict(meta=dict(source=os.path.abspath(src), ema=use_ema, width=width, deploy=deploy),
                     state_dict=converted), out, overwrite=overwrite)
    form = 'deploy' if deploy else 'training'
    hint = f"configs/ghostnetv3/{'deploy/' if deploy else ''}ghostnetv3-{width}x_8xb128_in1k" \
           f"{'_deploy' if deploy else ''}.py"
    return dict(out=out, num_keys=len(converted), width=width, form=form, num_classes=num_classes,
                config_hint=hint)
