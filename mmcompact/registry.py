"""Registries of the ``mmcompact`` scope.

Each is a child of MMEngine's root registry of the same kind, so a component registered here is found
from stock mmdet and mmpretrain configs as ``type='mmcompact.Name'`` once ``custom_imports`` (or any
import) has loaded ``mmcompact``.
"""
from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import LOOPS as MMENGINE_LOOPS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import OPTIM_WRAPPERS as MMENGINE_OPTIM_WRAPPERS
from mmengine.registry import TRANSFORMS as MMENGINE_TRANSFORMS
from mmengine.registry import Registry

MODELS = Registry('model', parent=MMENGINE_MODELS, scope='mmcompact',
                  locations=['mmcompact.models', 'mmcompact.distill'])
HOOKS = Registry('hook', parent=MMENGINE_HOOKS, scope='mmcompact', locations=['mmcompact.engine'])
LOOPS = Registry('loop', parent=MMENGINE_LOOPS, scope='mmcompact', locations=['mmcompact.engine'])
TRANSFORMS = Registry('transform', parent=MMENGINE_TRANSFORMS, scope='mmcompact', locations=['mmcompact.data'])
OPTIM_WRAPPERS = Registry('optim_wrapper', parent=MMENGINE_OPTIM_WRAPPERS, scope='mmcompact',
                          locations=['mmcompact.engine'])
# Candidate block types of the structure search (mmcompact.structure): ``type='InvertedResidual'`` etc. in
# a search menu or in a ``StructuredBackbone`` block spec. Register your own with
# ``@CANDIDATES.register_module()``; see ``mmcompact.models.candidates`` for the constructor contract.
CANDIDATES = Registry('structure candidate', scope='mmcompact', locations=['mmcompact.models'])
