"""``type='mmcompact.Reparameterized'``: any registered backbone, trained with re-parameterized conv-BN
branches and deployed as exactly itself."""
import types
from typing import Optional, Sequence, Union

from torch import nn

from ...reparam import unfold_conv_bn_pairs, reparameterize_model
from ...registry import MODELS


def _init_weights_then_reparameterize(self) -> None:
    """``init_weights`` of a re-parameterized backbone: fold back to the original modules, run the
    backbone's own initialisation (e.g. ``init_cfg=dict(type='Pretrained', ...)``, whose keys are the
    original ones), then re-parameterize again, starting from the initialised function."""
    training = self.training
    self.eval()  # some backbones' train() returns None, so not chained
    reparameterize_model(self)
    type(self).init_weights(self)
    unfold_conv_bn_pairs(self, **self.__dict__['_reparam_options'])
    self.train(training)


@MODELS.register_module(name='Reparameterized')
def build_reparameterized(backbone: dict, num_branches: int = 3, scale_branch: bool = True,
                          identity_branch: bool = True, include: Optional[Sequence[str]] = None,
                          exclude: Optional[Sequence[str]] = None,
                          input_shape: Sequence[int] = (1, 3, 224, 224), deploy: bool = False,
                          moment_fusion: Union[bool, str] = 'auto') -> nn.Module:
    """Build ``backbone`` and turn its conv-BN pairs into multi-branch re-parameterizable convs.

    Returns the backbone itself (same class, same attributes, e.g. ``out_channels``), so a detector or
    classifier config only wraps its backbone dict. ``reparameterize_model`` (tools/fold.py) folds it back
    into the original module types and state-dict keys: the deploy checkpoint loads into the plain
    backbone config, and ``deploy=True`` here builds exactly that plain backbone.
    ``include``/``exclude`` are fnmatch patterns on conv paths; ``input_shape`` is the probe input used to
    find the pairs (any size the backbone accepts). ``moment_fusion``: the fused training path of 1x1
    branches (``RepConvBN``; 'auto' where faster, False to turn it off).
    """
    model = MODELS.build(backbone)
    if deploy:
        return model
    options = dict(num_branches=num_branches, scale_branch=scale_branch, identity_branch=identity_branch,
                   include=include, exclude=exclude, input_shape=tuple(input_shape), moment_fusion=moment_fusion)
    if not unfold_conv_bn_pairs(model, **options):
        raise ValueError(f"no conv+BatchNorm pair of {backbone.get('type')} matched include={include}, "
                         f'exclude={exclude}: nothing to re-parameterize')
    if hasattr(model, 'init_weights'):
        model.__dict__['_reparam_options'] = options
        model.init_weights = types.MethodType(_init_weights_then_reparameterize, model)
    return model
