"""Calibrated accuracy predictor of block-wise search (DONNA-style): from the per-block distillation scores
of a structure to its measured accuracy, by a per-block weighted linear model fitted with ridge regression.

A structure is a choice of one candidate per block; its features are the chosen candidates' block scores
``scores[b][choice[b]]`` (B numbers). The model ``accuracy ~ intercept + sum_b w_b * score_b`` stays
additive over blocks, so selecting under a budget with it is still the exact knapsack (``select``) on the
per-candidate contributions ``-w_b * scores[b][c]`` (lower is better).
"""
import json
import random
from dataclasses import asdict, dataclass
from typing import Dict, List, Sequence

import numpy as np

from ..checkpoint.io import atomic_file
from .knapsack import draw_structure


@dataclass
class LinearPredictor:
    """``accuracy = intercept + sum_b weights[b] * scores[b][choice[b]]``."""
    intercept: float
    weights: List[float]

    def predict(self, scores: Sequence[Sequence[float]], choices: Sequence[Sequence[int]]) -> List[float]:
        features = block_features(scores, choices)
        return (self.intercept + features @ np.asarray(self.weights)).tolist()

    def selection_scores(self, scores: Sequence[Sequence[float]]) -> List[List[float]]:
        """Per block and candidate, minus its predicted contribution: what ``knapsack.select`` minimises."""
        return [[-w * s for s in row] for w, row in zip(self.weights, scores)]

    def save(self, path: str, **extra) -> None:
        """JSON with ``intercept``, ``weights`` and any ``extra`` fields (e.g. the held-out agreement)."""
        with atomic_file(path, 'w') as f:
            json.dump(dict(asdict(self), **extra), f, indent=1)

    @classmethod
    def load(cls, path: str, num_blocks: int = None) -> 'LinearPredictor':
        """Read a ``save``d predictor; ``num_blocks``: the search's, checked against the weights."""
        with open(path) as f:
            data = json.load(f)
        predictor = cls(float(data['intercept']), [float(w) for w in data['weights']])
        if num_blocks is not None and len(predictor.weights) != num_blocks:
            raise ValueError(f'{path} has {len(predictor.weights)} block weights but the search has {num_blocks} '
                             'blocks: calibrate the predictor on this search (tools/structure/calibrate_predictor.py)')
        return predictor


def sample_structures(costs: Sequence[Sequence[float]], fixed: float, count: int, seed: int,
                      draws: int = 20000, links=None) -> List[List[int]]:
    """``count`` distinct structures spread over the whole cost range: ``draws`` random choices (one
    candidate per block, uniformly), the range between the cheapest and the dearest structure split into
    ``count`` equal bins, and per bin the drawn structure closest to its centre (fewer when the space or the
    draws have fewer distinct costs). ``costs[b][c]``: one cost (e.g. MACs) per candidate; ``fixed``: the
    rest of the network; ``links``: searchable widths (``SearchSpace.links``), so that drawn structures
    agree on the widths between blocks. Sorted by cost."""
    rng = random.Random(seed)
    drawn = {draw_structure(rng, [len(row) for row in costs], links) for _ in range(draws)}
    total = {choice: fixed + sum(costs[b][c] for b, c in enumerate(choice)) for choice in drawn}
    low = fixed + sum(min(row) for row in costs)
    high = fixed + sum(max(row) for row in costs)
    width = (high - low) / count
    chosen = []
    for i in range(count):
        centre = low + (i + 0.5) * width
        free = [c for c in total if c not in chosen]
        if not free:
            break
        chosen.append(min(free, key=lambda c: (abs(total[c] - centre), c)))
    return [list(c) for c in sorted(chosen, key=lambda c: (total[c], c))]


def held_out_split(count: int, held_out: int, seed: int) -> Dict[str, List[int]]:
    """Indices ``fit`` and ``held_out`` of ``count`` structures (a seeded shuffle; at least 2 to fit)."""
    if not 2 <= held_out <= count - 2:
        raise ValueError(f'held_out must be between 2 and count - 2 = {count - 2} (two structures to fit, two '
                         f'to rank), got {held_out}')
    order = list(range(count))
    random.Random(seed).shuffle(order)
    return dict(fit=sorted(order[held_out:]), held_out=sorted(order[:held_out]))


def block_features(scores: Sequence[Sequence[float]], choices: Sequence[Sequence[int]]) -> np.ndarray:
    """(N, B): the block score of each structure's chosen candidate in each block."""
    choices = np.asarray(choices, dtype=np.int64)
    if choices.ndim != 2 or choices.shape[1] != len(scores):
        raise ValueError(f'choices must be (N, {len(scores)}) candidate indices, got shape {choices.shape}')
    return np.stack([np.asarray(scores[b], dtype=np.float64)[choices[:, b]] for b in range(len(scores))], 1)


def fit_predictor(scores: Sequence[Sequence[float]], choices: Sequence[Sequence[int]],
                  accuracies: Sequence[float], alpha: float = 1e-3) -> LinearPredictor:
    """Ridge regression of measured ``accuracies`` (N) on the structures' block features; ``alpha`` is the
    L2 penalty on the weights (not the intercept), relative to the features' scale. Needs N >= 2."""
    features = block_features(scores, choices)
    y = np.asarray(accuracies, dtype=np.float64)
    if len(y) != len(features) or len(y) < 2:
        raise ValueError(f'need one accuracy per structure and at least 2 structures, got {len(y)} accuracies '
                         f'for {len(features)} structures')
    mean_x, mean_y = features.mean(0), y.mean()
    centred = features - mean_x
    scale = max(float((centred ** 2).sum() / len(y)), 1e-12)
    gram = centred.T @ centred + alpha * scale * len(y) * np.eye(features.shape[1])
    weights = np.linalg.solve(gram, centred.T @ (y - mean_y))
    return LinearPredictor(float(mean_y - mean_x @ weights), weights.tolist())


def rank_agreement(predicted: Sequence[float], measured: Sequence[float]) -> dict:
    """Kendall's tau and Spearman's rho between predicted and measured accuracies (held-out structures)."""
    from scipy import stats
    return dict(kendall_tau=float(stats.kendalltau(predicted, measured).statistic),
                spearman=float(stats.spearmanr(predicted, measured).statistic))
