"""``type='mmcompact.Reparameterized'``: any registered backbone, trained with re-parameterized conv-BN
branches and deployed as exactly itself."""
import copy
from collections import defaultdict
from typing import Dict, Optional, Sequence, Union

from torch import nn

from ...registry import MODELS
from ...reparam import reparameterize_model, unfold_conv_bn_pairs


class ReparameterizedInit:
    """Mixed in before a backbone's class by ``Reparameterized`` (giving e.g. ``ReparameterizedResNet``, still
    a ``ResNet``): ``init_weights`` initialises a folded copy with the backbone's own initialisation (e.g.
    ``init_cfg=dict(type='Pretrained', ...)``, whose keys are the original ones), re-parameterizes the copy,
    and loads it into this model in place, so the model starts from the initialised function and keeps its
    parameter objects: MMEngine's runner builds the optimizer before it calls ``init_weights``, and a
    replaced parameter would never be trained."""
    reparam_options: Dict = {}

    def init_weights(self) -> None:
        plain = _detached_copy(self)
        plain.eval()  # some backbones' train() returns None, so not chained
        reparameterize_model(plain)
        # mmengine's initialisation record, private to the copy: BaseModule.init_weights then treats it as a
        # part of a model (no log dump) and checks it against the copy's own parameters.
        record = defaultdict(dict)
        for param in plain.parameters():
            record[param] = dict(init_info='', tmp_mean_value=param.data.mean().cpu())
        for module in plain.modules():
            module._params_init_info = record
        super(ReparameterizedInit, plain).init_weights()
        for module in plain.modules():
            del module._params_init_info
        unfold_conv_bn_pairs(plain, **self.reparam_options)
        self.load_state_dict(plain.state_dict())
        self._is_init = True


def _detached_copy(module: nn.Module) -> nn.Module:
    """A deep copy of ``module`` without the initialisation record that a surrounding model's
    ``init_weights`` attaches to every submodule (it holds the whole model's parameters)."""
    records = {m: m.__dict__.pop('_params_init_info') for m in module.modules() if '_params_init_info' in m.__dict__}
    try:
        return copy.deepcopy(module)
    finally:
        for m, record in records.items():
            m._params_init_info = record


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
    classifier config only wraps its backbone dict. ``reparameterize_model`` (tools/deployment/fold.py) folds it back
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
