"""``type='mmcompact.Reparameterized'``: any registered backbone, trained with re-parameterized conv-BN
branches and deployed as exactly itself."""
from typing import Dict, Optional, Sequence, Union

from torch import nn

from ...reparam import unfold_conv_bn_pairs, reparameterize_model
from ...registry import MODELS


class ReparameterizedInit:
    """Mixed in before a backbone's class by ``Reparameterized`` (giving e.g. ``ReparameterizedResNet``, still
    a ``ResNet``): ``init_weights`` folds back to the original modules, runs the backbone's own
    initialisation (e.g. ``init_cfg=dict(type='Pretrained', ...)``, whose keys are the original ones), then
    re-parameterizes again, starting from the initialised function."""
    reparam_options: Dict = {}

    def init_weights(self) -> None:
        training = self.training
        self.eval()  # some backbones' train() returns None, so not chained
        reparameterize_model(self)
        _record_new_parameters(self, 'folded for init_weights')
        super().init_weights()
        unfold_conv_bn_pairs(self, **self.reparam_options)
        _record_new_parameters(self, 're-parameterized from the initialised weights')
        self.train(training)


def _record_new_parameters(module: nn.Module, how: str) -> None:
    """Enter the parameters that folding or unfolding created into mmengine's initialisation record, when
    the ``init_weights`` of a model around ``module`` keeps one: ``BaseModule`` asserts that no parameter it
    has not seen appears during ``init_weights``, and removes the record from every submodule at the end."""
    record = getattr(module, '_params_init_info', None)
    if record is None:  # init_weights called on this backbone itself: nothing to keep in step
        return
    for param in module.parameters():
        if param not in record:
            record[param] = dict(init_info=f'{type(module).__name__}: {how}', tmp_mean_value=param.data.mean().cpu())
    for submodule in module.modules():
        submodule._params_init_info = record


_REPARAMETERIZED_CLASSES: Dict[type, type] = {}


def reparameterized_class(cls: type) -> type:
    """``Reparameterized<cls>``: ``cls`` with ``ReparameterizedInit`` mixed in (one class per ``cls``)."""
    if cls not in _REPARAMETERIZED_CLASSES:
        _REPARAMETERIZED_CLASSES[cls] = type(f'Reparameterized{cls.__name__}', (ReparameterizedInit, cls),
                                             dict(__module__=cls.__module__))
    return _REPARAMETERIZED_CLASSES[cls]


@MODELS.register_module(name='Reparameterized')
def build_reparameterized(backbone: dict, num_branches: int = 3, scale_branch: bool = True,
                          identity_branch: bool = True, include: Optional[Sequence[str]] = None,
                          exclude: Optional[Sequence[str]] = None,
                          input_shape: Sequence[int] = (1, 3, 224, 224), deploy: bool = False,
                          moment_fusion: Union[bool, str] = 'auto') -> nn.Module:
    """Build ``backbone`` and turn its conv-BN pairs into multi-branch re-parameterizable convs.

    Returns the backbone itself (an instance of its class, with ``init_weights`` made re-parameterization
    aware by ``ReparameterizedInit``; same attributes, e.g. ``out_channels``), so a detector or
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
        model.__class__ = reparameterized_class(type(model))
        model.reparam_options = options
    return model
