"""Registries of the ``mmcompact`` scope.

Each registry is a child of MMEngine's root registry of the same kind, so a component registered here
is found from stock mmdet and mmpretrain configs as ``type='mmcompact.Name'`` (and as plain ``'Name'``
inside configs whose ``default_scope`` is ``'mmcompact'``).
"""
from mmengine.registry import DATASETS as MMENGINE_DATASETS
from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import METRICS as MMENGINE_METRICS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import TRANSFORMS as MMENGINE_TRANSFORMS
from mmengine.registry import Registry

MODELS = Registry('model', parent=MMENGINE_MODELS, scope='mmcompact', locations=['mmcompact.models'])
HOOKS = Registry('hook', parent=MMENGINE_HOOKS, scope='mmcompact', locations=['mmcompact.engine'])
DATASETS = Registry('dataset', parent=MMENGINE_DATASETS, scope='mmcompact')
TRANSFORMS = Registry('transform', parent=MMENGINE_TRANSFORMS, scope='mmcompact')
METRICS = Registry('metric', parent=MMENGINE_METRICS, scope='mmcompact')
