"""Recorders: capture outputs (or inputs) of named modules with forward hooks, so that neither the
student nor the teacher needs any change to be distilled (torchdistill's approach)."""
import difflib
from contextlib import contextmanager
from typing import Any, Dict, List

from torch import nn


def resolve_module(model: nn.Module, path: str, owner: str) -> nn.Module:
    """``model``'s submodule at ``path``, or a KeyError that lists the closest existing paths."""
    modules = dict(model.named_modules())
    if path in modules:
        return modules[path]
    close = difflib.get_close_matches(path, list(modules), n=5, cutoff=0.5)
    raise KeyError(f"{owner} has no module '{path}'. Closest module paths: {close or list(modules)[1:6]}")


class Recorder:
    """Records, for each name, the output (``kind='output'``) or first positional input (``'input'``) of
    one module during the last forward run inside ``recording()``; ``index`` picks one element of a
    tuple output (e.g. ``index=0``: the classification maps of a dense head's ``(cls_scores, bbox_preds)``).

    Spec per name: ``'module.path'`` or ``dict(module='module.path', kind='output', index=None)``.
    """

    def __init__(self, model: nn.Module, specs: Dict[str, dict], owner: str):
        self.specs = {}
        for name, spec in specs.items():
            spec = dict(module=spec) if isinstance(spec, str) else dict(spec)
            kind = spec.get('kind', 'output')
            if kind not in ('output', 'input'):
                raise ValueError(f"{owner} recorder '{name}': kind must be 'output' or 'input', got {kind!r}")
            if set(spec) - {'module', 'kind', 'index'} or 'module' not in spec:
                raise ValueError(f"{owner} recorder '{name}' takes the keys 'module', 'kind' and 'index', "
                                 f'got {sorted(spec)}')
            module = resolve_module(model, spec['module'], owner)
            self.specs[name] = (module, spec['module'], kind, spec.get('index'))
        self.owner = owner
        self.data: Dict[str, Any] = {}

    @contextmanager
    def recording(self):
        """Hooks are attached, and records kept, only inside this context: copies of the model (EMA) carry
        neither hooks nor references to intermediate tensors."""
        self.data = {}
        handles: List = []
        for name, (module, _, kind, index) in self.specs.items():
            def hook(_module, args, output, name=name, kind=kind, index=index):
                value = output if kind == 'output' else args[0]
                self.data[name] = value if index is None else value[index]
            handles.append(module.register_forward_hook(hook))
        try:
            yield self.data
        finally:
            for handle in handles:
                handle.remove()
            self.data = {}

    def get(self, name: str):
        """The record of ``name`` from the forward pass run inside ``recording()``."""
        if name not in self.data:
            if name not in self.specs:
                raise KeyError(f"no {self.owner} recorder named '{name}' (recorders: {sorted(self.specs)})")
            raise RuntimeError(f"{self.owner} module '{self.specs[name][1]}' (recorder '{name}') did not run "
                               'in the forward pass: for a teacher, record a module that extract_feat or '
                               "the head runs (teacher_forward='head' runs both)")
        return self.data[name]
