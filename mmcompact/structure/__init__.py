"""Compact structure learning: block-wise distillation of candidate blocks, exact costs, and a knapsack
selection under a FLOPs and/or parameter budget (docs/structure_learning.md)."""
from ..models.candidates import (BasicResidual, DepthwiseSeparable, GhostBlock, Interface, InvertedResidual, Keep, Skip,
                                 build_candidate, candidate_label)
from .export import export_structure
from .knapsack import InfeasibleBudget, Selection, pareto_front, select
from .partition import Block, default_blocks, probe_blocks
from .pipeline import choose, load_search, predicted_front, run_search
from .predictor import LinearPredictor, block_features, fit_predictor, held_out_split, rank_agreement, sample_structures
from .search import BlockwiseDistillation, CandidateBank, normalised_mse, rank_correlation
from .space import SearchSpace, assemble, build_search_space, cost_table, count_deployed
from .transfer import check_backbone_initialised, transfer_backbone

__all__ = [
    'check_backbone_initialised', 'transfer_backbone', 'choose', 'export_structure', 'load_search', 'predicted_front',
    'run_search', 'BasicResidual',
    'DepthwiseSeparable', 'GhostBlock', 'Interface', 'InvertedResidual', 'Keep', 'Skip', 'build_candidate',
    'candidate_label', 'InfeasibleBudget', 'Selection', 'pareto_front', 'select', 'Block', 'default_blocks',
    'probe_blocks', 'LinearPredictor', 'block_features', 'fit_predictor', 'held_out_split', 'rank_agreement',
    'sample_structures', 'BlockwiseDistillation', 'CandidateBank', 'normalised_mse', 'rank_correlation',
    'SearchSpace', 'assemble', 'build_search_space', 'cost_table', 'count_deployed'
]
