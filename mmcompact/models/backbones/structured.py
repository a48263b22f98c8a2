"""``type='mmcompact.StructuredBackbone'``: a registered backbone with some of its blocks replaced by
candidate blocks, the form in which a learned compact structure (mmcompact.structure) is exported."""
from typing import Dict

from torch import nn

from ...registry import MODELS


@MODELS.register_module(name='StructuredBackbone')
def build_structured_backbone(backbone: dict, blocks: Dict[str, dict], deploy: bool = False) -> nn.Module:
    """Build ``backbone``, then replace the module at each path of ``blocks`` by its candidate.

    ``blocks``: ``{module path: dict(type=<candidate type>, in_channels, out_channels, stride, **options)}``,
    e.g. ``{'layer2': dict(type='InvertedResidual', in_channels=64, out_channels=128, stride=2,
    kernel_size=3, expand_ratio=3)}``; ``type='Keep'`` keeps the block (``num_blocks=k``: its first k
    repeats) and ``type='Skip'`` removes it. Returns the backbone itself (same class and attributes, so
    necks and heads configured for it still fit); its forward is unchanged. ``deploy=True`` builds the
    candidates' folded form, so a folded checkpoint loads strictly.
    """
    from ...utils import set_module
    from ..candidates import Interface, build_candidate
    model = MODELS.build(backbone)
    modules = dict(model.named_modules())
    for path, spec in blocks.items():
        if path not in modules:
            raise KeyError(f"StructuredBackbone: {backbone.get('type')} has no module '{path}' (blocks keys "
                           f'are module paths, e.g. {[n for n in modules if n and "." not in n][:6]})')
        spec = dict(spec)
        try:
            interface = Interface(spec.pop('in_channels'), spec.pop('out_channels'), spec.pop('stride'))
        except KeyError as err:
            raise KeyError(f"StructuredBackbone: blocks['{path}'] lacks {err}: every block spec states "
                           'in_channels, out_channels and stride') from None
        set_module(model, path, build_candidate(spec, interface, modules[path], deploy))
    return model
