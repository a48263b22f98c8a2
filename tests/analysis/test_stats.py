"""Seed statistics of the studies: t-based confidence interval of a mean, Welch's test."""
import math

import pytest

from mmcompact.analysis import mean_ci, welch_p


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
