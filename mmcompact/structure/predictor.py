"""Calibrated accuracy predictor of block-wise search (DONNA-style): from the per-block distillation scores
of a structure to its measured accuracy, by a per-block weighted linear model fitted with ridge regression.

A structure is a choice of one candidate per block; its features are the chosen candidates' block scores
``scores[b][choice[b]]`` (B numbers). The model ``accuracy ~ intercept + sum_b w_b * score_b`` stays
additive over blocks, so selecting under a budget with it is still the exact knapsack (``select``) on the
per-candidate contributions ``-w_b * scores[b][c]`` (lower is better).
"""
from dataclasses import dataclass
from typing import List, Sequence

import numpy as np


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
