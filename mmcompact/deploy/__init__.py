"""Deployment: checked folding (one function for every writer of a folded model), deploy configs, and
ONNX export checked with onnxruntime."""
from .fold import FoldMismatchError, deploy_config, fold_checked, fold_checkpoint
from .onnx import (FlatTensorOutputs, OnnxMismatchError, compare_with_pytorch, export_checked, export_onnx,
                   flat_outputs, onnx_bytes, onnx_runner, onnx_session)

__all__ = [
    'FoldMismatchError', 'deploy_config', 'fold_checked', 'fold_checkpoint', 'FlatTensorOutputs',
    'OnnxMismatchError', 'compare_with_pytorch', 'export_checked', 'export_onnx', 'flat_outputs', 'onnx_bytes',
    'onnx_runner', 'onnx_session'
]
