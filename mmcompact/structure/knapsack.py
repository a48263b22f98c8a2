"""Multiple-choice knapsack: exactly one candidate per block, total cost within a budget, lowest total
score, solved exactly for real-valued costs of one or more kinds (MACs, params, both). With ``links``
(searchable widths between blocks), a chain: candidate c of block b takes width ``links[b][c][0]`` and
gives ``links[b][c][1]``, and consecutive choices must agree on the width between them.

Dynamic programming over non-dominated partial selections: after block b, a state is (costs of the blocks so
far, score, choices); a state that another beats or ties in every cost and in score can never be part of a
better full selection, so it is dropped. Costs are summed in block order in float64, the same sums the
budget check and ``Selection.cost`` use, so a returned selection never exceeds the budget, a feasible
budget is never refused, and the optimum equals brute force. States whose costs plus the cheapest
possible remainder exceed the budget are dropped early. With links, a state also carries the width its
last block gives, and dominance is only checked among states that give the same width (a cheaper state of
another width may not be continued by the same candidates).
"""
import math
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np


class InfeasibleBudget(ValueError):
    """The budget is below the cheapest possible network."""


@dataclass
class Selection:
    """Chosen candidate index per block, with its total score and true total cost (per cost kind)."""
    choice: Tuple[int, ...]
    score: float
    cost: Tuple[float, ...]


def _as_lists(costs, scores) -> List[List[Tuple[float, ...]]]:
    """costs[b][c] as a tuple of floats (one per kind), checked against the shape of ``scores``."""
    rows = [[tuple(float(v) for v in np.atleast_1d(np.asarray(cost, dtype=np.float64))) for cost in row]
            for row in costs]
    if len(rows) != len(scores) or any(len(r) != len(s) for r, s in zip(rows, scores)):
        raise ValueError('scores and costs must list the same blocks and candidates')
    kinds = {len(cost) for row in rows for cost in row}
    if len(kinds) != 1:
        raise ValueError(f'every candidate needs the same number of cost kinds, got {sorted(kinds)}')
    if any(not math.isfinite(v) for row in rows for cost in row for v in cost) or \
            any(not math.isfinite(s) for row in scores for s in row):
        raise ValueError('scores and costs must be finite numbers')
    return rows


def _prune(states: list) -> list:
    """Keep the states no other state dominates (<= in every cost and in score); among exact duplicates the
    first. ``states``: [(costs tuple, score, choices)]."""
    states = sorted(states, key=lambda s: (s[0], s[1]))
    kept: list = []
    for costs, score, choice in states:
        if any(all(k <= c for k, c in zip(other[0], costs)) and other[1] <= score for other in kept):
            continue
        kept.append((costs, score, choice))
    return kept


def _front_1d(states: list) -> list:
    """One cost kind: sorted by cost, keep each state strictly better in score than every cheaper one."""
    kept, best = [], math.inf
    for costs, score, choice in sorted(states, key=lambda s: (s[0], s[1])):
        if score < best:
            kept.append((costs, score, choice))
            best = score
    return kept


def _states(scores: List[List[float]], costs: List[List[Tuple[float, ...]]],
            budgets: Optional[Sequence[float]], links: Optional[Sequence[Sequence[tuple]]] = None) -> list:
    """Non-dominated full selections (those within ``budgets`` when given), consistent with ``links``."""
    kinds = len(costs[0][0])
    prune = _front_1d if kinds == 1 else _prune
    # cheapest possible cost of blocks b.. (per kind), for dropping states that cannot end within budget
    rest = [[0.0] * kinds for _ in range(len(scores) + 1)]
    for b in range(len(scores) - 1, -1, -1):
        rest[b] = [rest[b + 1][k] + min(c[k] for c in costs[b]) for k in range(kinds)]
    states = {None: [((0.0, ) * kinds, 0.0, ())]}  # width given by the last chosen block -> states
    for b, (block_scores, block_costs) in enumerate(zip(scores, costs)):
        grown: dict = {}
        for width, group in states.items():
            for c, (score, cost) in enumerate(zip(block_scores, block_costs)):
                takes, gives = links[b][c] if links is not None else (None, None)
                if b > 0 and takes != width:
                    continue
                for state_costs, state_score, choice in group:
                    total = tuple(s + v for s, v in zip(state_costs, cost))
                    if budgets is not None and any(
                            t > budget if b + 1 == len(scores) else t + r > budget + 1e-9 * max(1.0, abs(budget))
                            for t, r, budget in zip(total, rest[b + 1], budgets)):
                        continue  # cannot end within budget (the slack keeps float rounding from dropping a fit)
                    grown.setdefault(gives, []).append((total, state_score + score, choice + (c, )))
        states = {width: prune(group) for width, group in grown.items()}
    return prune([state for group in states.values() for state in group])


def check_links(links, scores) -> Optional[List[List[tuple]]]:
    """``links[b][c]`` = (width taken, width given) per candidate, same shape as ``scores``; None passes."""
    if links is None:
        return None
    links = [[tuple(pair) for pair in row] for row in links]
    if len(links) != len(scores) or any(len(r) != len(s) for r, s in zip(links, scores)) or \
            any(len(pair) != 2 for row in links for pair in row):
        raise ValueError('links must give (width taken, width given) for every block and candidate')
    return links


def draw_structure(rng, sizes: Sequence[int], links=None) -> Tuple[int, ...]:
    """One random structure: per block a uniformly drawn candidate (of ``sizes[b]``), among those that take
    the width the previous block gives when ``links`` are given."""
    choice: list = []
    for b, size in enumerate(sizes):
        options = range(size) if links is None or b == 0 else \
            [c for c in range(size) if links[b][c][0] == links[b - 1][choice[-1]][1]]
        choice.append(rng.choice(list(options)))
    return tuple(choice)


def _selection(scores, costs, choice: Tuple[int, ...]) -> Selection:
    score = 0.0
    total = [0.0] * len(costs[0][0])
    for b, c in enumerate(choice):
        score += scores[b][c]
        total = [t + v for t, v in zip(total, costs[b][c])]
    return Selection(tuple(choice), score, tuple(total))


def select(scores: Sequence[Sequence[float]], costs: Sequence[Sequence[Sequence[float]]],
           budgets: Sequence[float], names: Sequence[str] = (), links=None) -> Selection:
    """The lowest-score selection with the sum of ``costs[b][c][k]`` <= ``budgets[k]`` for every kind k.

    ``scores[b][c]``: lower is better (e.g. predicted error); ``costs``: per block, candidate and kind (e.g.
    [MACs] or [MACs, params]), already excluding the fixed part of the network. Exact for real-valued costs.
    ``links``: per block and candidate, (width taken, width given); consecutive choices must agree.
    Raises ``InfeasibleBudget`` stating the smallest achievable cost of each kind.
    """
    scores = [[float(s) for s in row] for row in scores]
    costs = _as_lists(costs, scores)
    kinds = len(costs[0][0])
    if len(budgets) != kinds:
        raise ValueError(f'{len(budgets)} budget(s) for {kinds} cost kind(s)')
    cheapest = [sum(min(c[k] for c in row) for row in costs) for k in range(kinds)]
    over = [k for k in range(kinds) if cheapest[k] > budgets[k]]
    if over:
        names = list(names) or [f'cost {k}' for k in range(kinds)]
        raise InfeasibleBudget('budget cannot be met: ' + '; '.join(
            f'{names[k]} budget for the searched blocks is {budgets[k]:,.0f} but the cheapest choice costs '
            f'{cheapest[k]:,.0f}' for k in over) + ' (raise the budget or add cheaper candidates)')
    states = _states(scores, costs, list(budgets), check_links(links, scores))
    if not states:  # the cheapest of each kind fits, but no single (width-consistent) selection meets all
        raise InfeasibleBudget(f'no selection meets every budget {list(budgets)} at once (each kind alone '
                               'can be met, candidate by candidate): raise one of the budgets')
    best = min(states, key=lambda s: (s[1], s[0]))
    return _selection(scores, costs, best[2])


def pareto_front(scores: Sequence[Sequence[float]], costs: Sequence[Sequence[float]],
                 links=None) -> List[Selection]:
    """The exact Pareto front for one cost kind, in one pass: every selection that no cheaper-or-equal one
    beats in score; cheapest first, each strictly better than the one before."""
    scores = [[float(s) for s in row] for row in scores]
    costs = _as_lists([[[c] if np.isscalar(c) else c for c in row] for row in costs], scores)
    if len(costs[0][0]) != 1:
        raise ValueError('pareto_front takes one cost kind per candidate')
    return [_selection(scores, costs, choice)
            for _, _, choice in _states(scores, costs, None, check_links(links, scores))]
