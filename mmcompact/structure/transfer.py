"""A trained structure-learning classifier's backbone reused in another task's model (e.g. a detector), with a
check that it really was initialised from the classifier."""
import copy
import os
from typing import List, Sequence, Tuple

from mmengine.config import Config
from torch import nn

from ..checkpoint import safe_load


def transfer_backbone(student_config: str, checkpoint: str, out_indices: Sequence[int]) -> Tuple[dict, List[int]]:
    """The backbone of a trained structure-learning classifier (``student.py`` of ``export_structure``,
    weights in ``checkpoint``) as a backbone config for another task's model, e.g. a detector: the same
    ``StructuredBackbone`` with ``out_indices`` and an ``init_cfg`` that loads the classifier's backbone
    weights (keys under ``backbone.``). Returns (backbone config, channels of each output) (the channels are
    what an FPN's ``in_channels`` must be). The classifier's default scope is written into the inner
    backbone's type, so the config builds under any default scope (mmdet's included). ``checkpoint`` may be
    the classifier's or a distillation run's (``student.backbone.`` keys)."""
    import torch

    from ..registry import MODELS
    cfg = Config.fromfile(student_config)
    backbone = copy.deepcopy(cfg.model.backbone.to_dict())
    if backbone.get('type') != 'mmcompact.StructuredBackbone':
        raise ValueError(f"{student_config}: model.backbone is {backbone.get('type')!r}, not the "
                         "'mmcompact.StructuredBackbone' that export_structure writes")
    inner = backbone['backbone']
    if '.' not in inner['type'] and cfg.get('default_scope'):
        inner['type'] = f"{cfg.default_scope}.{inner['type']}"
    inner['out_indices'] = tuple(out_indices)
    probe = MODELS.build(copy.deepcopy(backbone))
    probe.eval()  # (mmpretrain's ResNet.train returns None: no chaining)
    with torch.no_grad():
        channels = [int(out.shape[1]) for out in probe(torch.zeros(1, 3, 64, 64))]
    inner['init_cfg'] = dict(type='Pretrained', checkpoint=os.path.abspath(checkpoint),
                             prefix=_backbone_prefix(_weights(checkpoint), checkpoint))
    return backbone, channels


def _weights(checkpoint: str) -> dict:
    """The state dict in the checkpoint file ``checkpoint``, loaded once."""
    from ..checkpoint.fit import checkpoint_weights
    return checkpoint_weights(safe_load(checkpoint, 'cpu'))


def _backbone_prefix(weights: dict, checkpoint: str) -> str:
    """Where a classifier's backbone weights are in ``weights`` (of the file ``checkpoint``): ``backbone.``, or
    ``student.backbone.`` in a distillation run's."""
    for prefix in ('backbone.', 'student.backbone.'):
        if any(k.startswith(prefix) for k in weights):
            return prefix
    raise ValueError(f'{checkpoint} holds no backbone weights (no key starts with backbone. or student.backbone.)')


def check_backbone_initialised(backbone: nn.Module, checkpoint: str) -> None:
    """Raise unless ``backbone``'s state equals the backbone weights of ``checkpoint`` (see
    ``transfer_backbone``) exactly: the same keys, every tensor equal. MMEngine's ``Pretrained`` init loads
    non-strictly and only logs what it skipped; this makes a transfer that loaded nothing (or half) an error."""
    import torch
    everything = _weights(checkpoint)
    prefix = _backbone_prefix(everything, checkpoint)
    weights = {k[len(prefix):]: v for k, v in everything.items() if k.startswith(prefix)}
    state = backbone.state_dict()
    if set(weights) != set(state):
        missing, extra = sorted(set(state) - set(weights)), sorted(set(weights) - set(state))
        raise ValueError(f'{checkpoint} does not fit the backbone: missing {missing[:4]}, unexpected {extra[:4]}')
    differ = [k for k, v in state.items() if not torch.equal(v.cpu(), weights[k].to(v.dtype))]
    if differ:
        raise ValueError(f'the backbone was not initialised from {checkpoint}: {len(differ)} tensors differ '
                         f'(e.g. {differ[:3]}); check its init_cfg')
