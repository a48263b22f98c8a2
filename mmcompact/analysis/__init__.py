"""Analysis: params/FLOPs (MACs) accounting, latency benchmarks."""
from .benchmark import (latency_by_part, measure_distill_overhead, measure_latency, measure_train_step,
                        time_interleaved)
from .logs import final_metric, last_value, read_scalars
from .stats import mean_ci, welch_p
from .complexity import (MAC_OPS, Complexity, complexity_table, count_complexity, default_parts,
                         format_table, train_and_deploy_complexity)

__all__ = [
    'MAC_OPS', 'Complexity', 'complexity_table', 'count_complexity', 'default_parts', 'format_table',
    'train_and_deploy_complexity', 'latency_by_part', 'measure_latency', 'measure_train_step',
    'measure_distill_overhead', 'time_interleaved', 'final_metric', 'last_value', 'read_scalars', 'mean_ci', 'welch_p'
]
