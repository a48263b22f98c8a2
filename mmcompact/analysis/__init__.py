"""Analysis: params/FLOPs (MACs) accounting, latency benchmarks."""
from .benchmark import measure_latency
from .complexity import (MAC_OPS, Complexity, complexity_table, count_complexity, default_parts,
                         format_table, train_and_deploy_complexity)

__all__ = [
    'MAC_OPS', 'Complexity', 'complexity_table', 'count_complexity', 'default_parts', 'format_table',
    'train_and_deploy_complexity', 'measure_latency'
]
