"""Statistics for seed studies: mean with a Student-t confidence interval, Welch's t-test, the paired
(by seed) difference."""
import math
from typing import Dict, Sequence, Tuple


def mean_ci(values: Sequence[float], level: float = 0.95) -> Tuple[float, float]:
    """(mean, half-width of the ``level`` confidence interval of the mean, Student t with n-1 degrees of
    freedom); the half-width is nan for fewer than 2 values."""
    from scipy import stats
    n = len(values)
    if n == 0:
        raise ValueError('mean_ci needs at least one value')
    mean = sum(values) / n
    if n < 2:
        return mean, float('nan')
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    return mean, float(stats.t.ppf(0.5 + level / 2, n - 1)) * sd / math.sqrt(n)


def welch_p(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided p-value of Welch's t-test (unequal variances) that ``a`` and ``b`` have the same mean;
    nan when either has fewer than 2 values."""
    from scipy import stats
    if len(a) < 2 or len(b) < 2:
        return float('nan')
    if len(set(a)) == 1 and len(set(b)) == 1:  # no spread: t is undefined (or infinite)
        return float('nan') if a[0] == b[0] else 0.0
    return float(stats.ttest_ind(a, b, equal_var=False).pvalue)


def paired_diff(a: Dict[int, float], b: Dict[int, float], level: float = 0.95) -> Tuple[float, float, float, int]:
    """``a - b`` paired by seed (the seeds both have): (mean difference, half-width of its ``level``
    confidence interval, two-sided p of the paired t-test, number of pairs). Half-width and p are nan for
    fewer than 2 pairs; with no spread (every difference the same) p is 0, or nan if that difference is 0."""
    from scipy import stats
    seeds = sorted(set(a) & set(b))
    if not seeds:
        raise ValueError(f'paired_diff: no seed in common (a has {sorted(a)}, b has {sorted(b)})')
    diffs = [a[s] - b[s] for s in seeds]
    mean, half = mean_ci(diffs, level)
    if len(diffs) < 2 or len(set(diffs)) == 1:
        p = float('nan') if len(diffs) < 2 or diffs[0] == 0 else 0.0
    else:
        p = float(stats.ttest_rel([a[s] for s in seeds], [b[s] for s in seeds]).pvalue)
    return mean, half, p, len(diffs)
