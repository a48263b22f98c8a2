"""Teacher-student distillation: distiller model, recorders, connectors, losses."""
from .connectors import ConvBNConnector, SpatialConnector
from .distiller import Distiller, load_model_config
from .export import distiller_checkpoint_state, export_student
from .losses import (ChannelWiseDivergence, DenseHeadKDLoss, DKDLoss, FeatureMSELoss, KLDivergence, PKDLoss,
                     SoftTargetCrossEntropy)

__all__ = [
    'ConvBNConnector', 'SpatialConnector', 'Distiller', 'load_model_config', 'ChannelWiseDivergence',
    'DenseHeadKDLoss', 'DKDLoss', 'FeatureMSELoss', 'KLDivergence', 'PKDLoss', 'SoftTargetCrossEntropy',
    'distiller_checkpoint_state', 'export_student'
]
