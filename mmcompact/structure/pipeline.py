"""The structure search end to end (behind tools/structure/search_structure.py): its settings, the run
(resumable), the saved result, and the choice of a structure under budgets."""
import json
import os
import time
from typing import Callable, Dict, Optional, Sequence

from mmengine.config import Config
from mmengine.dist import is_main_process
from mmengine.logging import MMLogger
from mmengine.runner import Runner, set_random_seed
from torch import nn

from ..checkpoint.io import atomic_file
from ..utils import build_model
from .knapsack import Selection, pareto_front, select
from .predictor import LinearPredictor
from .search import BlockwiseDistillation, additivity_check
from .space import build_search_space, cost_table

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
        raise FileNotFoundError(f'{path} does not exist: run tools/structure/search_structure.py with '
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
