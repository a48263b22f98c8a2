"""Does a checkpoint belong to a model? A clear error naming the config that fits, before any weight is
loaded (non-strict loading would silently evaluate or train randomly initialised layers)."""
from typing import Iterable, Mapping

from .safe_load import CheckpointLoadError

# Parameter names only the training form of re-parameterized modules has (mmcompact's RepConvBN and ConvBN,
# mmpretrain's RepVGG/MobileOne-style blocks): present in training checkpoints, absent once folded.
_TRAINING_FORM_MARKERS = ('.branches.', '.scale.', '.identity.', '.rbr_', '.bn.')


class CheckpointMismatchError(CheckpointLoadError):
    """The checkpoint's keys do not match the model's (missing and/or unexpected keys)."""


def checkpoint_weights(checkpoint: Mapping) -> Mapping:
    """The state dict inside a runner checkpoint (``state_dict``) or a bare state dict, with the ``module.``
    prefix of DDP-wrapped models removed (as MMEngine's ``load_checkpoint`` does)."""
    weights = checkpoint.get('state_dict', checkpoint)
    return {k[len('module.'):] if k.startswith('module.') else k: v for k, v in weights.items()}


def _examples(keys: Iterable[str]) -> str:
    keys = sorted(keys)
    return ', '.join(keys[:3]) + (f' (+{len(keys) - 3} more)' if len(keys) > 3 else '')


def check_checkpoint_fits(model_keys: Iterable[str], checkpoint: Mapping, checkpoint_path: str,
                          setting: str) -> None:
    """Raise ``CheckpointMismatchError`` unless the checkpoint has exactly the model's keys.

    The message says what the checkpoint is when that is recognisable (folded, training form, a distiller's,
    a bare backbone's) and which config or tool fits it; ``setting`` names the option the user gave it with
    (e.g. ``'CHECKPOINT'`` or ``'load_from'``).
    """
    weights = checkpoint_weights(checkpoint)
    model_keys, ckpt_keys = set(model_keys), set(weights)
    missing, unexpected = model_keys - ckpt_keys, ckpt_keys - model_keys
    if not missing and not unexpected:
        return
    meta = checkpoint.get('meta', {}) if isinstance(checkpoint, Mapping) else {}
    head = f'{setting} {checkpoint_path!r} does not fit the model of this config'
    if (meta or {}).get('deploy') or (missing and any(m in k for k in missing for m in _TRAINING_FORM_MARKERS)
                                       and not any(m in k for k in unexpected for m in _TRAINING_FORM_MARKERS)):
        hint = ('this checkpoint is folded (deploy form): use the deploy config (the same config with '
                "deploy=True, e.g. the *_deploy.py one), or give the training-form checkpoint")
    elif any(m in k for k in unexpected for m in _TRAINING_FORM_MARKERS) and not any(
            m in k for k in missing for m in _TRAINING_FORM_MARKERS):
        hint = ('this checkpoint is in training form (re-parameterization branches) and the config builds the '
                'deploy form: use the training config, or fold the checkpoint first with tools/deployment/fold.py')
    elif all(k.startswith(('student.', 'connectors.')) for k in ckpt_keys):
        hint = ('this is a distillation checkpoint: export the student with tools/deployment/export_student.py, or use '
                'the distillation config')
    elif missing and all(f'backbone.{k}' in missing for k in ckpt_keys):
        hint = "these are a bare backbone's weights: load them with init_cfg=dict(type='Pretrained', ...)"
    else:
        hint = 'check that the config and the checkpoint belong to the same model'
    raise CheckpointMismatchError(
        f'{head}: {len(missing)} missing key(s) [{_examples(missing)}], {len(unexpected)} unexpected '
        f'[{_examples(unexpected)}]. {hint[0].upper()}{hint[1:]}.')
