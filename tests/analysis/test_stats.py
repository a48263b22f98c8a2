"""Seed statistics of the studies: t-based confidence interval of a mean, Welch's test, the paired difference."""
import math

import pytest

from mmcompact.analysis import mean_ci, paired_diff, welch_p


def test_mean_ci_is_the_student_t_interval():
    values = [1.0, 2.0, 3.0, 4.0, 5.0]
    mean, half = mean_ci(values)
    sd = math.sqrt(2.5)  # sample standard deviation
    assert mean == 3.0 and half == pytest.approx(2.7764451 * sd / math.sqrt(5), rel=1e-6)  # t(0.975, 4)
    assert math.isnan(mean_ci([1.0])[1])
    with pytest.raises(ValueError):
        mean_ci([])


def test_welch_p_separates_clear_and_overlapping_differences():
    assert welch_p([10.0, 10.5, 9.8, 10.2, 10.1], [12.0, 12.4, 11.9, 12.2, 12.1]) < 1e-4
    assert welch_p([1.0, 3.0, 2.0], [2.0, 1.5, 2.5]) > 0.5
    assert welch_p([1.0, 1.0], [2.0, 2.0]) == 0.0 and math.isnan(welch_p([1.0, 1.0], [1.0, 1.0]))
    assert math.isnan(welch_p([1.0], [2.0, 3.0]))


def test_paired_diff_pairs_by_seed_and_sees_a_shift_that_welch_misses():
    # a consistent +0.5..+1.2 shift under a seed-to-seed spread of 30: paired it is clear, unpaired it is not
    a = {0: 10.0, 1: 20.0, 2: 30.0, 3: 40.0, 7: 100.0}  # seed 7 has no partner: left out
    b = {3: 39.2, 2: 28.8, 1: 19.5, 0: 9.0}
    mean, half, p, n = paired_diff(a, b)
    sd = math.sqrt(sum((d - 0.875) ** 2 for d in (1.0, 0.5, 1.2, 0.8)) / 3)
    assert n == 4 and mean == pytest.approx(0.875)
    assert half == pytest.approx(3.1824463 * sd / 2, rel=1e-6)  # t(0.975, 3)
    assert p < 0.01 < 0.9 < welch_p([a[s] for s in range(4)], [b[s] for s in range(4)])
    assert paired_diff({0: 2.0, 1: 3.0}, {0: 1.0, 1: 2.0})[2] == 0.0  # every pair +1: no spread
    assert math.isnan(paired_diff({0: 2.0}, {0: 1.0, 1: 2.0})[1])
    with pytest.raises(ValueError, match='no seed in common'):
        paired_diff({0: 1.0}, {1: 1.0})
