"""Classification head of GhostNetV3 for mmpretrain's ImageClassifier."""
from typing import Tuple

import torch
import torch.nn.functional as F
from torch import nn

from ...compat import import_mmpretrain_heads
from ...registry import MODELS

LinearClsHead = import_mmpretrain_heads().LinearClsHead


@MODELS.register_module()
class GhostNetV3ClsHead(LinearClsHead):
    """(N, C) pooled features -> 1x1 conv to ``hidden_channels`` (bias) -> ReLU -> dropout -> Linear.

    Use after ``neck=dict(type='GlobalAveragePooling')``. The 1x1 conv (``conv_head``) keeps the shape of
    the official weights, (hidden, C, 1, 1). ``dropout_ratio`` applies in training only (timm: 0.2; the
    official code declares it but does not apply it).
    """

    def __init__(self, num_classes: int, in_channels: int, hidden_channels: int = 1280,
                 dropout_ratio: float = 0.2,
                 loss: dict = dict(type='mmpretrain.CrossEntropyLoss', loss_weight=1.0), **kwargs):
        # The loss type carries its scope, so the head builds under any default scope (mmdet, mmengine).
        super().__init__(num_classes, hidden_channels, loss=loss, **kwargs)
        self.conv_head = nn.Conv2d(in_channels, hidden_channels, 1, bias=True)
        self.dropout_ratio = dropout_ratio

    def pre_logits(self, feats: Tuple[torch.Tensor]) -> torch.Tensor:
        x = feats[-1]
        if x.dim() == 2:
            x = x[:, :, None, None]
        x = F.relu(self.conv_head(x)).flatten(1)
        return F.dropout(x, self.dropout_ratio, self.training)
