"""Multiple-choice knapsack: exactly one candidate per block, total cost within a budget, lowest total
score, solved exactly by dynamic programming over costs rounded *up* to a grid, so that a selection
feasible on the grid is feasible in true costs (the result never exceeds the budget)."""
import math
from dataclasses import dataclass
from typing import List, Sequence, Tuple, Union

import numpy as np


class InfeasibleBudget(ValueError):
    """The budget is below the cheapest possible network."""


@dataclass
class Selection:
    """Chosen candidate index per block, with its total score and true total cost (per cost kind)."""
    choice: Tuple[int, ...]
    score: float
    cost: Tuple[float, ...]


def _as_array(costs, scores) -> np.ndarray:
    """(blocks, max candidates, kinds) float array; blocks may have different numbers of candidates (the
    padding is never read: every loop runs over ``len(scores[b])``)."""
    rows = [np.asarray(row, dtype=np.float64).reshape(len(s), -1) for row, s in zip(costs, scores)]
    if len(rows) != len(scores) or any(len(r) != len(s) for r, s in zip(rows, scores)):
        raise ValueError('scores and costs must list the same blocks and candidates')
    out = np.zeros((len(rows), max(len(r) for r in rows), rows[0].shape[1]))
    for b, row in enumerate(rows):
        out[b, :len(row)] = row
    return out


def _grid_costs(costs: np.ndarray, budgets: Sequence[float],
                resolution: Union[int, Sequence[int]]) -> Tuple[np.ndarray, List[int]]:
    """Costs (blocks, candidates, kinds) in grid units (ceil), and the budget of each kind in units
    (``resolution`` steps per kind, one number for all kinds or one per kind)."""
    limits = [int(resolution)] * len(budgets) if np.isscalar(resolution) else [int(r) for r in resolution]
    units = np.zeros(costs.shape, dtype=np.int64)
    for k, budget in enumerate(budgets):
        if budget <= 0:  # only free candidates fit
            units[..., k] = np.where(costs[..., k] <= 0, 0, limits[k] + 1)
            continue
        step = budget / limits[k]
        with np.errstate(over='ignore'):  # a cost beyond the budget only needs to be marked as not fitting
            units[..., k] = np.minimum(np.ceil(costs[..., k] / step), limits[k] + 1).astype(np.int64)
    return units, limits


def select(scores: Sequence[Sequence[float]], costs: Sequence[Sequence[Sequence[float]]],
           budgets: Sequence[float], resolution: Union[int, Sequence[int]] = 400,
           names: Sequence[str] = ()) -> Selection:
    """Best selection with the sum of ``costs[b][c][k]`` <= ``budgets[k]`` for every cost kind k.

    ``scores[b][c]``: lower is better (block-wise distillation error); ``costs``: per block, candidate and
    kind (e.g. [MACs] or [MACs, params]), already excluding the fixed part of the network. With integer
    costs and ``budget / resolution`` = 1 (per kind) the result is the exact optimum; otherwise it is optimal among
    selections whose rounded-up costs fit. Two kinds use a resolution x resolution table (keep it <= 200).
    Raises ``InfeasibleBudget`` stating the smallest achievable cost of each kind.
    """
    scores = [list(map(float, s)) for s in scores]
    costs = _as_array(costs, scores)
    kinds = costs.shape[-1]
    if len(budgets) != kinds:
        raise ValueError(f'{len(budgets)} budget(s) for {kinds} cost kind(s)')
    cheapest = [float(sum(min(costs[b, c, k] for c in range(len(scores[b]))) for b in range(len(scores))))
                for k in range(kinds)]
    over = [k for k in range(kinds) if cheapest[k] > budgets[k]]
    if over:
        names = list(names) or [f'cost {k}' for k in range(kinds)]
        raise InfeasibleBudget('budget cannot be met: ' + '; '.join(
            f'{names[k]} budget for the searched blocks is {budgets[k]:,.0f} but the cheapest choice costs '
            f'{cheapest[k]:,.0f}' for k in over) + ' (raise the budget or add cheaper candidates)')
    units, limits = _grid_costs(costs, budgets, resolution)
    best, back = _dynamic_program(scores, units, limits)
    if not np.isfinite(best).any():
        raise InfeasibleBudget(f'no selection fits the budget {list(budgets)} on a grid of {resolution} '
                               'steps: raise the resolution or the budget')
    return _trace(scores, costs, units, back, np.unravel_index(int(np.argmin(best)), best.shape))


def _dynamic_program(scores, units: np.ndarray, limits: List[int]):
    """best[u] = lowest score of one candidate per block with grid cost exactly u (per kind), and the
    back-pointers (chosen candidate of each block per cell)."""
    kinds = len(limits)
    shape = tuple(limit + 1 for limit in limits)
    best = np.full(shape, np.inf)
    best[(0, ) * kinds] = 0.0
    back = []
    for b, block_scores in enumerate(scores):
        new = np.full(shape, np.inf)
        arg = np.full(shape, -1, dtype=np.int64)
        for c, score in enumerate(block_scores):
            shift = units[b, c]
            if any(shift[k] > limits[k] for k in range(kinds)):
                continue
            src = best[tuple(slice(0, limits[k] + 1 - shift[k]) for k in range(kinds))] + score
            dst = tuple(slice(shift[k], limits[k] + 1) for k in range(kinds))
            better = src < new[dst]
            new[dst] = np.where(better, src, new[dst])
            arg[dst] = np.where(better, c, arg[dst])
        best = new
        back.append(arg)
    return best, back


def _trace(scores, costs: np.ndarray, units: np.ndarray, back, cell) -> Selection:
    """The selection ending in grid cell ``cell``, with its true score and costs."""
    choice = []
    for b in range(len(scores) - 1, -1, -1):
        c = int(back[b][tuple(cell)])
        choice.append(c)
        cell = tuple(cell[k] - units[b, c, k] for k in range(units.shape[-1]))
    choice = tuple(reversed(choice))
    return Selection(choice, float(sum(scores[b][c] for b, c in enumerate(choice))),
                     tuple(float(sum(costs[b, c, k] for b, c in enumerate(choice)))
                           for k in range(costs.shape[-1])))


def pareto_front(scores: Sequence[Sequence[float]], costs: Sequence[Sequence[float]],
                 resolution: int = 400) -> List[Selection]:
    """The predicted Pareto front for one cost kind in one DP pass: for every grid budget up to the most
    expensive network, the best selection; returned cheapest first, each strictly better than the one
    before."""
    scores = [list(map(float, s)) for s in scores]
    costs = _as_array(costs, scores)
    top = float(sum(max(costs[b, :len(s), 0]) for b, s in enumerate(scores)))
    units, limits = _grid_costs(costs, [top], resolution)
    best, back = _dynamic_program(scores, units, limits)
    front, best_so_far = [], math.inf
    for total in range(resolution + 1):
        if best[total] < best_so_far - 1e-12:
            best_so_far = best[total]
            front.append(_trace(scores, costs, units, back, (total, )))
    return front
