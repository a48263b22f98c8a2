"""Single-teacher distillation of any mmpretrain classifier or mmdet detector.

The student is trained with its own task losses plus weighted distillation losses between recorded
student and teacher outputs. The teacher is frozen and kept outside the module tree: not in
``state_dict()``/checkpoints, not in ``parameters()`` (optimizer, EMA), moved with ``.to()``, always in
eval mode, run under ``torch.no_grad()`` and only as far as the recorded outputs need.
"""
import copy
import os
from typing import Dict, Optional, Union

import torch
from mmengine.config import Config, ConfigDict
from mmengine.model import BaseModel
from mmengine.registry import MODELS as ROOT_MODELS
from mmengine.registry import DefaultScope
from torch import nn

from ..checkpoint import check_checkpoint_fits, checkpoint_weights, safe_load
from ..registry import MODELS
from ..utils import Recorder, model_config


def load_model_config(spec: Union[str, dict], role: str):
    """(model config, default scope or None) from an inline dict or a config file path.

    Paths: absolute (write ``'{{fileDirname}}/x.py'`` for one relative to the config that names it), or a
    package config ``'mmcompact::folder/x.py'`` / ``'mmdet::folder/x.py'`` / ``'mmpretrain::folder/x.py'``
    (MMEngine's external-config mechanism: the package's ``.mim/configs``, from any install). A plain
    relative path is refused: it would depend on the working directory.
    """
    if isinstance(spec, dict):
        return ConfigDict(copy.deepcopy(spec)), None
    if not isinstance(spec, str):
        raise TypeError(f'{role} must be a model config dict or a config file path, got {type(spec).__name__}')
    if '::' in spec:
        from mmengine.hub import get_config
        cfg = get_config(spec)
    elif os.path.isabs(spec):
        if not os.path.isfile(spec):
            raise FileNotFoundError(f"{role} config '{spec}' does not exist")
        cfg = Config.fromfile(spec)
    else:
        raise ValueError(f"{role} config path '{spec}' is relative, so it would depend on the working directory. "
                         f"Write '{{{{fileDirname}}}}/{spec}' to resolve it relative to the config that names it, "
                         f"or 'mmcompact::<folder>/<name>.py' for a config that ships with mmcompact.")
    return model_config(cfg), cfg.get('default_scope')


def build_in_scope(model_cfg: dict, scope: Optional[str]) -> nn.Module:
    if scope is None:
        return ROOT_MODELS.build(model_cfg)
    with DefaultScope.overwrite_default_scope(scope):
        return ROOT_MODELS.build(model_cfg)


def build_distill_part(cfg: dict) -> nn.Module:
    """Connectors and losses are mmcompact's: found as 'Name' or 'mmcompact.Name' under any default scope."""
    with DefaultScope.overwrite_default_scope('mmcompact'):
        return MODELS.build(cfg)


def _gt_labels(inputs: torch.Tensor, data_samples) -> torch.Tensor:
    return torch.cat([s.gt_label for s in data_samples]).to(inputs.device)


# What a distillation loss may ask for through its ``extra_inputs``: name -> f(inputs, data_samples).
EXTRA_INPUTS = {'labels': _gt_labels, 'data_samples': lambda inputs, data_samples: data_samples}


def student_loss_keys(student: nn.Module) -> set:
    """The loss keys a student's ``loss()`` returns, as far as its modules tell before any forward:
    ``'loss'`` for mmpretrain classifiers, and the attribute names of mmdet heads' loss modules
    (``loss_cls``, ``loss_bbox``, ...; RPN heads prefix them with ``loss_rpn_``). ``loss()`` checks again
    on the real keys, so a student this does not foresee still cannot be overwritten silently."""
    from mmpretrain.models import ImageClassifier
    if isinstance(student, ImageClassifier):
        return {'loss'}
    keys = set()
    for path, _ in student.named_modules():
        parts = path.split('.')
        if parts[-1].startswith('loss_'):
            keys.add(parts[-1].replace('loss_', 'loss_rpn_', 1) if 'rpn_head' in parts else parts[-1])
    return keys


def _head_name(model: nn.Module) -> Optional[str]:
    return next((n for n in ('head', 'bbox_head') if isinstance(getattr(model, n, None), nn.Module)), None)


@MODELS.register_module()
class Distiller(BaseModel):
    """Teacher-student distillation as an MMEngine model; train/val/test it with the normal runner.

    Args:
        student / teacher: model config dict or config file path (see ``load_model_config``).
        teacher_checkpoint: loaded strictly (safe loading) into the teacher; None only for tests/demos.
        student_recorders / teacher_recorders: ``{name: 'module.path' | dict(module, kind, index)}``.
        connectors: ``{name: connector config}`` (student side, trained, not exported).
        distill_losses: ``{'loss_<name>': dict(type=..., student=<recorder>, teacher=<recorder>,
            connector=<name or None>, **loss args)}``. Tuple/list records (FPN levels) are paired
            element by element and averaged.
        teacher_forward: 'features' (``extract_feat`` only), 'head' (+ the head's forward) or 'auto'
            (the head only when a teacher recorder lies inside it). The teacher's loss never runs.
        teacher_input: ``dict(mean=[...], std=[...], size=(H, W) or None)`` when the teacher was trained
            with another normalisation or input size than the student; inputs are converted from the
            student's normalisation (its data preprocessor's mean/std).
        data_preprocessor: the student's preprocessor config (default: the one in the student config);
            the distiller and the student share that one module.
    """

    def __init__(self, student, teacher, teacher_checkpoint: Optional[str] = None,
                 student_recorders: Optional[dict] = None, teacher_recorders: Optional[dict] = None,
                 connectors: Optional[dict] = None, distill_losses: Optional[dict] = None,
                 teacher_forward: str = 'auto', teacher_input: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None, init_cfg: Optional[dict] = None):
        student_cfg, student_scope = load_model_config(student, 'student')
        teacher_cfg, teacher_scope = load_model_config(teacher, 'teacher')
        if data_preprocessor is not None:  # e.g. the top-level data_preprocessor of mmpretrain configs
            student_cfg['data_preprocessor'] = data_preprocessor
        super().__init__(init_cfg=init_cfg)
        if teacher_checkpoint is not None and not os.path.isfile(os.path.expanduser(teacher_checkpoint)):
            raise FileNotFoundError(f"teacher_checkpoint '{teacher_checkpoint}' does not exist: give the path "
                                    'of the trained teacher (model.teacher_checkpoint)')
        if teacher_forward not in ('auto', 'features', 'head'):
            raise ValueError(f"teacher_forward must be 'auto', 'features' or 'head', got {teacher_forward!r}")
        self.student = build_in_scope(student_cfg, student_scope)
        # One preprocessor, the student's (the student model completes its config, e.g. its type).
        self.data_preprocessor = self.student.data_preprocessor
        teacher_model = build_in_scope(teacher_cfg, teacher_scope)
        if teacher_checkpoint is not None:
            checkpoint = safe_load(teacher_checkpoint, map_location='cpu')
            check_checkpoint_fits(teacher_model.state_dict().keys(), checkpoint, teacher_checkpoint,
                                  'model.teacher_checkpoint')
            teacher_model.load_state_dict(checkpoint_weights(checkpoint), strict=True)
        teacher_model.requires_grad_(False).eval()
        # Outside the module tree on purpose: see the class docstring.
        self.__dict__['teacher'] = teacher_model
        self.student_recorder = Recorder(self.student, student_recorders or {}, 'student')
        self.teacher_recorder = Recorder(teacher_model, teacher_recorders or {}, 'teacher')
        self.teacher_input = teacher_input
        self.connectors = nn.ModuleDict(
            {name: build_distill_part(cfg) for name, cfg in (connectors or {}).items()})
        self.distill_losses = nn.ModuleDict()
        self.loss_routes: Dict[str, tuple] = {}
        for name, cfg in (distill_losses or {}).items():
            cfg = dict(cfg)
            if not name.startswith('loss_'):
                raise ValueError(f"distill loss name '{name}' must start with 'loss_' (MMEngine sums and logs "
                                 "keys that contain 'loss')")
            route = (cfg.pop('student', None), cfg.pop('teacher', None), cfg.pop('connector', None))
            if route[0] not in self.student_recorder.specs:
                raise KeyError(f"distill_losses.{name}.student = {route[0]!r} is not a student recorder "
                               f'(student_recorders: {sorted(self.student_recorder.specs)})')
            if route[1] not in self.teacher_recorder.specs:
                raise KeyError(f"distill_losses.{name}.teacher = {route[1]!r} is not a teacher recorder "
                               f'(teacher_recorders: {sorted(self.teacher_recorder.specs)})')
            if route[2] is not None and route[2] not in self.connectors:
                raise KeyError(f"distill_losses.{name}.connector = {route[2]!r} is not a connector "
                               f'(connectors: {sorted(self.connectors)})')
            self.distill_losses[name] = build_distill_part(cfg)
            unknown = set(getattr(self.distill_losses[name], 'extra_inputs', ())) - set(EXTRA_INPUTS)
            if unknown:
                raise ValueError(f'distill_losses.{name} ({cfg["type"]}) declares extra_inputs {sorted(unknown)}; '
                                 f'the distiller provides {sorted(EXTRA_INPUTS)}')
            self.loss_routes[name] = route
        student_keys = student_loss_keys(self.student)
        clashes = sorted(set(self.distill_losses) & student_keys)
        if clashes:
            raise ValueError(f'distill loss name(s) {clashes} equal the student\'s own loss key(s) '
                             f'{sorted(student_keys)}: the distillation loss would replace the task loss. '
                             "Rename them in distill_losses (e.g. 'loss_kd_cls').")
        head = _head_name(teacher_model)
        if teacher_forward == 'auto':
            paths = [spec[1] for spec in self.teacher_recorder.specs.values()]
            teacher_forward = 'head' if head and any(p == head or p.startswith(head + '.') for p in paths) \
                else 'features'
        if teacher_forward == 'head' and head is None:
            raise ValueError("teacher_forward='head' but the teacher has no 'head' or 'bbox_head'")
        self.teacher_forward, self.teacher_head = teacher_forward, head
        self.distill_weight = 1.0   # set by DistillLossWeightHook
        self.distill_enabled = True  # cleared by StopDistillHook

    # --- the teacher stays frozen, out of the tree, but on the student's device -------------------------
    def train(self, mode: bool = True):
        super().train(mode)
        self.teacher.eval()
        return self

    def _apply(self, fn, *args, **kwargs):
        super()._apply(fn, *args, **kwargs)
        self.teacher._apply(fn, *args, **kwargs)
        return self

    def __deepcopy__(self, memo):
        """Copies (EMA's averaged model) share the frozen teacher instead of duplicating it."""
        memo[id(self.teacher)] = self.teacher
        clone = self.__class__.__new__(self.__class__)
        memo[id(self)] = clone
        for key, value in self.__dict__.items():
            clone.__dict__[key] = copy.deepcopy(value, memo)
        return clone

    # --- forward ---------------------------------------------------------------------------------------
    def forward(self, inputs: torch.Tensor, data_samples=None, mode: str = 'tensor'):
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        return self.student(inputs, data_samples, mode=mode)

    def teacher_inputs(self, inputs: torch.Tensor) -> torch.Tensor:
        """Student-normalised (N, 3, H, W) -> the teacher's normalisation and input size."""
        if not self.teacher_input:
            return inputs
        x = inputs
        if 'mean' in self.teacher_input or 'std' in self.teacher_input:
            pre = self.data_preprocessor
            if getattr(pre, '_enable_normalize', False):
                x = x * pre.std + pre.mean
            mean = x.new_tensor(self.teacher_input.get('mean', [0., 0., 0.])).view(1, -1, 1, 1)
            std = x.new_tensor(self.teacher_input.get('std', [1., 1., 1.])).view(1, -1, 1, 1)
            x = (x - mean) / std
        size = self.teacher_input.get('size')
        if size is not None and tuple(x.shape[-2:]) != tuple(size):
            x = torch.nn.functional.interpolate(x, size=tuple(size), mode='bilinear', align_corners=False)
        return x

    @torch.no_grad()
    def run_teacher(self, inputs: torch.Tensor) -> None:
        """Run the teacher as far as its recorders need (never its loss), recording into the recorder."""
        feats = self.teacher.extract_feat(self.teacher_inputs(inputs))
        if self.teacher_forward == 'head':
            getattr(self.teacher, self.teacher_head)(feats)

    def loss(self, inputs: torch.Tensor, data_samples) -> Dict[str, torch.Tensor]:
        """Student task losses (its own keys) plus the weighted distillation losses (``loss_<name>``)."""
        if not (self.distill_enabled and self.distill_losses):
            return self.student.loss(inputs, data_samples)
        with self.student_recorder.recording(), self.teacher_recorder.recording():
            losses = self.student.loss(inputs, data_samples)
            self.run_teacher(inputs)
            for name, loss_module in self.distill_losses.items():
                if name in losses:
                    raise ValueError(f"distill loss '{name}' equals a loss key of the student "
                                     f'({sorted(losses)}): rename it in distill_losses')
                student_key, teacher_key, connector = self.loss_routes[name]
                extra = {key: EXTRA_INPUTS[key](inputs, data_samples)
                         for key in getattr(loss_module, 'extra_inputs', ())}
                value = self._paired_loss(name, loss_module, self.student_recorder.get(student_key),
                                          self.teacher_recorder.get(teacher_key), connector, extra)
                losses[name] = value * self.distill_weight
        return losses

    def _paired_loss(self, name, loss_module, student, teacher, connector, extra) -> torch.Tensor:
        if isinstance(student, (list, tuple)):
            if not isinstance(teacher, (list, tuple)) or len(student) != len(teacher):
                raise ValueError(f'{name}: the student record has {len(student)} elements, the teacher record '
                                 f'{len(teacher) if isinstance(teacher, (list, tuple)) else "is a tensor"}')
            values = [self._paired_loss(name, loss_module, s, t, connector, extra)
                      for s, t in zip(student, teacher)]
            return sum(values) / len(values)
        if connector is not None:
            expected = getattr(self.connectors[connector], 'in_channels', student.shape[1])
            if student.shape[1] != expected:
                raise ValueError(f"{name}: connector '{connector}' takes {expected} channels but the student "
                                 f'record has shape {tuple(student.shape)}; set its in_channels to '
                                 f'{student.shape[1]} (one connector serves every element of a tuple record)')
            student = self.connectors[connector](student, teacher)
        if student.shape != teacher.shape:
            hint = 'ConvBNConnector (channels)' if student.shape[1] != teacher.shape[1] else 'SpatialConnector'
            raise ValueError(f'{name}: student shape {tuple(student.shape)} != teacher shape '
                             f'{tuple(teacher.shape)}; add a {hint} to the student side '
                             f"(connectors=dict(...), distill_losses.{name}.connector='...')")
        return loss_module(student, teacher, **extra)

    # --- export ----------------------------------------------------------------------------------------
    def student_state_dict(self, state_dict: Optional[dict] = None) -> Dict[str, torch.Tensor]:
        """The student's weights with plain student keys (connectors and teacher dropped)."""
        state_dict = self.state_dict() if state_dict is None else state_dict
        return {k[len('student.'):]: v for k, v in state_dict.items() if k.startswith('student.')}
