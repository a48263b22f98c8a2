"""Export the student of a distiller: plain student checkpoint and, when foldable, the folded one."""
import copy
import os
from typing import Dict, Sequence

import torch

from ..checkpoint import save_atomic
from ..deploy import fold_checked
from ..reparam import foldable_modules
from ..utils import random_inputs, strip_prefix


def export_student(distiller, state_dict: Dict[str, torch.Tensor], out_dir: str, fold: bool = True,
                   check_shape: Sequence[int] = (2, 3, 224, 224), tolerance: float = 1e-4,
                   overwrite: bool = False) -> dict:
    """Write ``student.pth`` (and ``student_deploy.pth`` if folding applies) from a distiller state dict.

    The student checkpoint holds exactly the student's keys (teacher and connectors dropped) and is
    proven to load strictly into a copy of the student; the folded one is checked against it on a random
    batch and refused beyond ``tolerance``. Every check runs before anything is written, so a failed export
    leaves ``out_dir`` as it was. Returns paths and the fold difference.
    """
    student = copy.deepcopy(distiller.student)
    student_state = distiller.student_state_dict(state_dict)
    student.load_state_dict(student_state, strict=True)
    student.eval()
    outputs = {'student': (os.path.join(out_dir, 'student.pth'),
                           dict(meta=dict(exported_from='mmcompact.Distiller'), state_dict=student_state))}
    report = {}
    if fold and foldable_modules(student):
        folded, check = fold_checked(student, random_inputs(check_shape).to(next(student.parameters()).device),
                                     tolerance, 'the export tolerance (StudentExportHook.tolerance)')
        diff = report['fold_diff'] = check['max_abs_diff']
        outputs['deploy'] = (os.path.join(out_dir, 'student_deploy.pth'),
                             dict(meta=dict(deploy=True, fold_max_abs_diff=diff), state_dict=folded.state_dict()))
    existing = [path for path, _ in outputs.values() if os.path.exists(path)]
    if existing and not overwrite:
        raise FileExistsError(f"{', '.join(existing)} already exists: choose another output folder or pass --force")
    os.makedirs(out_dir, exist_ok=True)
    for key, (path, checkpoint) in outputs.items():
        report[key] = save_atomic(checkpoint, path, overwrite=overwrite)
    return report


def distiller_checkpoint_state(checkpoint: dict, use_ema: bool = True) -> Dict[str, torch.Tensor]:
    """The distiller weights to export from a runner checkpoint.

    MMEngine's EMAHook stores the EMA weights as ``state_dict`` and the raw ones as ``ema_state_dict``
    (keys prefixed ``module.``), so ``use_ema`` picks ``state_dict`` and ``use_ema=False`` the raw weights.
    """
    if use_ema or 'ema_state_dict' not in checkpoint:
        return checkpoint['state_dict']
    return strip_prefix(checkpoint['ema_state_dict'], 'module.')
