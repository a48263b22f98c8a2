"""A chosen structure written as a trainable student (behind tools/structure/export_structure.py): its config,
its block-distilled initial weights and, for classifiers, its KD fine-tuning config."""
import os
from typing import Dict, Optional, Sequence

from mmengine.config import Config
from torch import nn

from ..checkpoint import safe_load, save_atomic
from ..utils import build_model
from .pipeline import CONFIG_FILE, build_teacher_and_space, choose, load_search, search_settings
from .predictor import LinearPredictor
from .search import STATE_FILE, CandidateBank
from .space import assemble, count_deployed


def _head_logits_path(model: nn.Module) -> Optional[str]:
    head = getattr(model, 'head', None)
    if not isinstance(head, nn.Module):
        return None
    linears = [name for name, m in head.named_modules() if isinstance(m, nn.Linear)]
    return f'head.{linears[-1]}' if linears else None


def write_student_configs(student_cfg: Config, out_dir: str, teacher_config: str,
                          teacher_checkpoint: Optional[str], logits: Optional[str]) -> list:
    """Write ``student.py`` and, when ``logits`` (the module path of the classifier's last linear layer) is
    given, ``student_kd.py``: the student fine-tuned with logit KD from the teacher. Returns the paths."""
    os.makedirs(out_dir, exist_ok=True)
    student_path = os.path.join(out_dir, 'student.py')
    student_cfg.dump(student_path)
    if logits is None:
        return [student_path]
    kd = Config(dict(student_cfg.to_dict()))
    kd.model = dict(
        type='mmcompact.Distiller', student=student_path, teacher=os.path.abspath(teacher_config),
        teacher_checkpoint=teacher_checkpoint and os.path.abspath(teacher_checkpoint),
        student_recorders=dict(logits=logits), teacher_recorders=dict(logits=logits),
        distill_losses=dict(loss_kd=dict(type='KLDivergence', tau=4.0, loss_weight=1.0, student='logits',
                                         teacher='logits')))
    kd.custom_imports = dict(imports=['mmcompact'], allow_failed_imports=False)
    kd_path = os.path.join(out_dir, 'student_kd.py')
    kd.dump(kd_path)
    return [student_path, kd_path]


def export_structure(search_dir: str, budgets: Dict[str, float], out_dir: str, force: bool = False,
                     choice: Optional[Sequence[int]] = None, predictor: Optional[str] = None) -> dict:
    """Choose the structure for ``budgets`` (or take ``choice``, a candidate index per block), write
    ``student.py`` (the teacher config with a ``StructuredBackbone``), ``student_init.pth`` (block-distilled
    blocks, teacher's other weights; loaded by the config's ``init_cfg``) and, for classifiers,
    ``student_kd.py`` (fine-tune with KD from the teacher). The student is rebuilt from the written config,
    loaded strictly and re-counted exactly. ``predictor``: a calibrated predictor's JSON
    (tools/structure/calibrate_predictor.py) to select by predicted accuracy instead of the summed block scores.
    Returns the selection, the blocks chosen, the exact costs and the paths."""
    result = load_search(search_dir)
    if choice is None:
        model = None if predictor is None else LinearPredictor.load(predictor, len(result['labels']))
        selection = choose(result, budgets, model)
        choice, score = selection.choice, selection.score
        if model is not None:  # the predicted accuracy
            score = model.predict(result['scores'], [choice])[0]
    else:
        if len(choice) != len(result['labels']) or any(
                not 0 <= c < len(labels) for c, labels in zip(choice, result['labels'])):
            raise ValueError(f'choice {list(choice)} must give one candidate index per block, within '
                             f"{[len(labels) for labels in result['labels']]}")
        links = result.get('links')
        if links and any(links[b][choice[b]][0] != links[b - 1][choice[b - 1]][1] for b in range(1, len(choice))):
            raise ValueError(f'choice {list(choice)} does not chain: a block must take the width the block '
                             f"before it gives ({[result['labels'][b][c] for b, c in enumerate(choice)]})")
        score = sum(result['scores'][b][c] for b, c in enumerate(choice))
    out_dir = os.path.abspath(out_dir)
    paths = {name: os.path.join(out_dir, name) for name in ('student.py', 'student_init.pth', 'student_kd.py')}
    existing = [p for p in paths.values() if os.path.exists(p)]
    if existing and not force:
        raise FileExistsError(f'{existing[0]} exists: choose another --out or pass --force to replace it')
    cfg = Config.fromfile(os.path.join(search_dir, CONFIG_FILE))
    settings = search_settings(cfg)
    model, space = build_teacher_and_space(cfg, settings)
    if space.labels != result['labels']:
        raise ValueError(f'{search_dir}/{CONFIG_FILE} no longer gives the searched candidates: re-run the search')
    bank = CandidateBank(space, model.backbone)
    bank.load_state_dict(safe_load(os.path.join(search_dir, STATE_FILE), map_location='cpu')['bank'])
    student = assemble(model, space, choice, [bank.blocks[b][c] for b, c in enumerate(choice)],
                       bank.order(len(space.blocks)))
    state = student.state_dict()

    blocks = {space.blocks[b].path: space.block_spec(b, c) for b, c in enumerate(choice)}
    student_cfg = Config(dict(cfg.to_dict()))
    student_cfg.pop('structure_search')
    student_cfg.model.backbone = dict(type='mmcompact.StructuredBackbone', backbone=cfg.model.backbone,
                                      blocks=blocks)
    student_cfg.model.init_cfg = dict(type='Pretrained', checkpoint=paths['student_init.pth'])
    width = space.output_width(choice)
    if width != space.blocks[-1].interface.out_channels:  # a narrowed output: the head reads fewer features
        if 'in_channels' not in student_cfg.model.get('head', {}):
            raise ValueError('the structure narrows the backbone output but model.head has no in_channels to '
                             'set: set structure_search.widths.search_output=False')
        student_cfg.model.head.in_channels = width
    rebuilt = build_model(student_cfg)
    missing, unexpected = rebuilt.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise RuntimeError(f'the exported config does not match the assembled student: missing {missing[:5]}, '
                           f'unexpected {unexpected[:5]}')
    exact = count_deployed(rebuilt, settings['input_shape'])
    predicted = {k: result['costs']['fixed'][k] + sum(result['costs']['table'][b][c][k]
                                                      for b, c in enumerate(choice)) for k in exact}
    save_atomic(dict(state_dict=state, meta=dict(search_dir=os.path.abspath(search_dir), choice=list(choice),
                                                 budgets=budgets)), paths['student_init.pth'], overwrite=force)
    written = write_student_configs(student_cfg, out_dir, os.path.join(os.path.abspath(search_dir), CONFIG_FILE),
                                    settings.get('teacher_checkpoint'), _head_logits_path(model))
    return dict(choice=list(choice), labels=[space.labels[b][c] for b, c in enumerate(choice)],
                blocks=[b.path for b in space.blocks], exact=exact, predicted=predicted,
                predicted_score=score, budgets=budgets, files=[paths['student_init.pth']] + written)
