"""Analysis: params/FLOPs (MACs) accounting, latency benchmarks, training logs, seed statistics, the package
versions a result was measured with."""
from .benchmark import latency_by_part, measure_distill_overhead, measure_latency, measure_train_step, time_interleaved
from .complexity import (MAC_OPS, AmountError, Complexity, complexity_table, count_complexity, default_parts,
                         format_table, parse_amount, train_and_deploy_complexity)
from .environment import RESULT_PACKAGES, package_versions
from .logs import final_metric, last_value, read_scalars
from .stats import mean_ci, paired_diff, welch_p

__all__ = [
    'MAC_OPS', 'AmountError', 'Complexity', 'complexity_table', 'count_complexity', 'default_parts',
    'format_table', 'parse_amount', 'train_and_deploy_complexity', 'latency_by_part', 'measure_latency',
    'measure_train_step', 'measure_distill_overhead', 'time_interleaved', 'final_metric', 'last_value',
    'read_scalars', 'mean_ci', 'paired_diff', 'welch_p', 'RESULT_PACKAGES', 'package_versions'
]
