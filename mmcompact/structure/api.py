"""The structure search end to end, behind tools/search_structure.py and tools/export_structure.py."""
import copy
import json
import os
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from mmengine.config import Config
from mmengine.dist import is_main_process
from mmengine.logging import MMLogger
from mmengine.runner import Runner, set_random_seed
from torch import nn

from ..checkpoint import safe_load, save_atomic
from ..checkpoint.io import atomic_file
from .knapsack import Selection, pareto_front, select
from .predictor import LinearPredictor
from .search import STATE_FILE, BlockwiseDistillation, CandidateBank, additivity_check
from ..utils import build_model
from .space import assemble, build_search_space, cost_table, count_deployed

RESULT_FILE = 'search.json'
CONFIG_FILE = 'search_config.py'
SEARCH_KEYS = {'teacher_checkpoint', 'input_shape', 'blocks', 'candidates', 'epochs', 'optimizer',
               'checkpoint_interval', 'log_interval', 'correlation_samples', 'seed', 'output_affine', 'plateau',
               'progressive', 'widths'}


def search_settings(cfg: Config) -> dict:
    """``cfg.structure_search`` checked: unknown keys and missing required ones are named."""
    if 'structure_search' not in cfg:
        raise KeyError("the config has no 'structure_search' section: see configs/structure/ for one "
                       '(teacher_checkpoint, input_shape, candidates, epochs, ...)')
    settings = dict(cfg.structure_search)
    unknown = set(settings) - SEARCH_KEYS
    if unknown:
        raise KeyError(f'unknown structure_search key(s) {sorted(unknown)}; valid keys: {sorted(SEARCH_KEYS)}')
    for key in ('input_shape', 'candidates'):
        if key not in settings:
            raise KeyError(f'structure_search.{key} is required')
    if len(settings['input_shape']) != 3 or min(settings['input_shape']) <= 0:
        raise ValueError(f"structure_search.input_shape must be (C, H, W) with positive sizes, got "
                         f"{settings['input_shape']}")
    for key in ('epochs', 'checkpoint_interval', 'log_interval', 'correlation_samples'):
        value = settings.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise ValueError(f'structure_search.{key} must be a whole number >= 1, got {value!r}')
    checkpoint = settings.get('teacher_checkpoint')
    if checkpoint is not None and not os.path.isfile(checkpoint):
        raise FileNotFoundError(f"structure_search.teacher_checkpoint '{checkpoint}' does not exist: give "
                                'the trained teacher checkpoint (None only for tests)')
    return settings


def build_teacher_and_space(cfg: Config, settings: dict):
    """The frozen teacher model and the search space over its backbone."""
    model = build_model(cfg, settings.get('teacher_checkpoint')).eval().requires_grad_(False)
    if not isinstance(getattr(model, 'backbone', None), nn.Module):
        raise TypeError(f'the structure search needs a model with a backbone, got {type(model).__name__}')
    space = build_search_space(model.backbone, settings['input_shape'], settings['candidates'],
                               settings.get('blocks'), settings.get('output_affine', True), settings.get('widths'))
    return model, space


def run_search(cfg: Config, work_dir: str, resume: bool = False,
               progress_factory: Optional[Callable[[int], Callable[[int], None]]] = None) -> dict:
    """Block-wise distillation search; writes ``search.json`` (costs, scores, additivity check) and
    ``search_state.pth`` (candidate weights) in ``work_dir`` and returns the result dict.

    ``progress_factory(total_iterations)`` returns the per-iteration progress callback (tools: tqdm).
    """
    settings = search_settings(cfg)
    os.makedirs(work_dir, exist_ok=True)
    result_path = os.path.join(work_dir, RESULT_FILE)
    if os.path.exists(result_path) and not resume:
        raise FileExistsError(f'{result_path} exists: resume it with --resume or choose another --work-dir')
    started = time.time()
    set_random_seed(settings.get('seed', 0))  # python, numpy and torch: augmentation draws from all three
    model, space = build_teacher_and_space(cfg, settings)
    costs = cost_table(model, space, settings['input_shape'])
    seed = settings.get('seed', 0)
    train_loader = Runner.build_dataloader(cfg.train_dataloader, seed=seed)
    val_loader = Runner.build_dataloader(cfg.val_dataloader, seed=seed)
    search = BlockwiseDistillation(
        model, space, train_loader, val_loader, work_dir, epochs=settings.get('epochs', 4),
        optimizer=settings.get('optimizer'), checkpoint_interval=settings.get('checkpoint_interval', 100),
        log_interval=settings.get('log_interval', 20), plateau=settings.get('plateau'),
        progressive=settings.get('progressive', False), seed=seed)
    progress = progress_factory(search.epochs * search.iters_per_epoch) if progress_factory else None
    search.run(resume=resume, progress=progress)
    scores = search.scores()
    check = additivity_check(search, scores, settings.get('correlation_samples', 8), seed)
    result = dict(
        input_shape=list(settings['input_shape']),
        blocks=[dict(path=b.path, **b.interface.as_dict(), input_shape=list(b.input_shape))
                for b in space.blocks],
        candidates=space.menus, labels=space.labels, widths=space.widths, links=space.links,
        costs=costs, scores=scores, history=search.history,
        additivity=check, search_seconds=time.time() - started)
    if not is_main_process():  # every rank has the same (all-reduced) result; one writes it
        return result
    if not os.path.exists(os.path.join(work_dir, CONFIG_FILE)):
        cfg.dump(os.path.join(work_dir, CONFIG_FILE))
    with atomic_file(result_path, 'w') as f:
        json.dump(result, f, indent=1)
    MMLogger.get_current_instance().info(
        f'structure search: additivity check on {len(check["choices"])} configurations: Spearman '
        f'{check["spearman"]:.3f}; wrote {result_path}')
    return result


def load_search(search_dir: str) -> dict:
    path = os.path.join(search_dir, RESULT_FILE)
    if not os.path.isfile(path):
        raise FileNotFoundError(f'{path} does not exist: run tools/search_structure.py with '
                                f'--work-dir {search_dir} first')
    with open(path) as f:
        return json.load(f)


def _block_costs(result: dict, kinds: Sequence[str]):
    return [[[entry[k] for k in kinds] for entry in row] for row in result['costs']['table']]


def choose(result: dict, budgets: Dict[str, float], predictor: Optional[LinearPredictor] = None) -> Selection:
    """The selection for ``budgets`` (``{'macs': ..., 'params': ...}``, whole network, deploy form): the
    lowest summed block score, or with ``predictor`` the highest predicted accuracy (still exact)."""
    kinds = [k for k in ('macs', 'params') if budgets.get(k) is not None]
    if not kinds:
        raise ValueError('give a budget: --macs and/or --params')
    fixed = result['costs']['fixed']
    block_budgets = [budgets[k] - fixed[k] for k in kinds]
    try:
        scores = result['scores'] if predictor is None else predictor.selection_scores(result['scores'])
        return select(scores, _block_costs(result, kinds), block_budgets, names=kinds, links=result.get('links'))
    except ValueError as err:
        cheapest = {k: fixed[k] + sum(min(e[k] for e in row) for row in result['costs']['table'])
                    for k in kinds}
        raise type(err)(f"{err}. Whole network: the smallest achievable is "
                        + ', '.join(f'{k} {cheapest[k]:,.0f}' for k in kinds)
                        + ' (fixed parts: ' + ', '.join(f'{k} {fixed[k]:,.0f}' for k in kinds) + ')') from None


def predicted_front(result: dict, kind: str = 'macs') -> list:
    """The predicted Pareto front: (whole-network cost, summed score, choice), cheapest first."""
    fixed = result['costs']['fixed'][kind]
    return [(fixed + s.cost[0], s.score, s.choice)
            for s in pareto_front(result['scores'], _block_costs(result, [kind]), result.get('links'))]


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
    (tools/calibrate_predictor.py) to select by predicted accuracy instead of the summed block scores.
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


def transfer_backbone(student_config: str, checkpoint: str, out_indices: Sequence[int]) -> Tuple[dict, List[int]]:
    """The backbone of a trained structure-learning classifier (``student.py`` of ``export_structure``,
    weights in ``checkpoint``) as a backbone config for another task's model, e.g. a detector: the same
    ``StructuredBackbone`` with ``out_indices`` and an ``init_cfg`` that loads the classifier's backbone
    weights (keys under ``backbone.``). Returns (backbone config, channels of each output) (the channels are
    what an FPN's ``in_channels`` must be). The classifier's default scope is written into the inner
    backbone's type, so the config builds under any default scope (mmdet's included). ``checkpoint`` may be
    the classifier's or a distillation run's (``student.backbone.`` keys)."""
    import torch

    from ..registry import MODELS
    cfg = Config.fromfile(student_config)
    backbone = copy.deepcopy(cfg.model.backbone.to_dict())
    if backbone.get('type') != 'mmcompact.StructuredBackbone':
        raise ValueError(f"{student_config}: model.backbone is {backbone.get('type')!r}, not the "
                         "'mmcompact.StructuredBackbone' that export_structure writes")
    inner = backbone['backbone']
    if '.' not in inner['type'] and cfg.get('default_scope'):
        inner['type'] = f"{cfg.default_scope}.{inner['type']}"
    inner['out_indices'] = tuple(out_indices)
    probe = MODELS.build(copy.deepcopy(backbone))
    probe.eval()  # (mmpretrain's ResNet.train returns None: no chaining)
    with torch.no_grad():
        channels = [int(out.shape[1]) for out in probe(torch.zeros(1, 3, 64, 64))]
    inner['init_cfg'] = dict(type='Pretrained', checkpoint=os.path.abspath(checkpoint),
                             prefix=_backbone_prefix(_weights(checkpoint), checkpoint))
    return backbone, channels


def _weights(checkpoint: str) -> dict:
    """The state dict in the checkpoint file ``checkpoint``, loaded once."""
    from ..checkpoint.fit import checkpoint_weights
    return checkpoint_weights(safe_load(checkpoint, 'cpu'))


def _backbone_prefix(weights: dict, checkpoint: str) -> str:
    """Where a classifier's backbone weights are in ``weights`` (of the file ``checkpoint``): ``backbone.``, or
    ``student.backbone.`` in a distillation run's."""
    for prefix in ('backbone.', 'student.backbone.'):
        if any(k.startswith(prefix) for k in weights):
            return prefix
    raise ValueError(f'{checkpoint} holds no backbone weights (no key starts with backbone. or student.backbone.)')


def check_backbone_initialised(backbone: nn.Module, checkpoint: str) -> None:
    """Raise unless ``backbone``'s state equals the backbone weights of ``checkpoint`` (see
    ``transfer_backbone``) exactly: the same keys, every tensor equal. MMEngine's ``Pretrained`` init loads
    non-strictly and only logs what it skipped; this makes a transfer that loaded nothing (or half) an error."""
    import torch
    everything = _weights(checkpoint)
    prefix = _backbone_prefix(everything, checkpoint)
    weights = {k[len(prefix):]: v for k, v in everything.items() if k.startswith(prefix)}
    state = backbone.state_dict()
    if set(weights) != set(state):
        missing, extra = sorted(set(state) - set(weights)), sorted(set(weights) - set(state))
        raise ValueError(f'{checkpoint} does not fit the backbone: missing {missing[:4]}, unexpected {extra[:4]}')
    differ = [k for k, v in state.items() if not torch.equal(v.cpu(), weights[k].to(v.dtype))]
    if differ:
        raise ValueError(f'the backbone was not initialised from {checkpoint}: {len(differ)} tensors differ '
                         f'(e.g. {differ[:3]}); check its init_cfg')
