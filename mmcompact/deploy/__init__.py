"""Deployment: checked folding (one function for every writer of a folded model), deploy configs, ONNX
export checked with onnxruntime, and static INT8 quantization with its evaluation and sensitivity report."""
from .fold import FoldMismatchError, deploy_config, fold_checked, fold_checkpoint
from .onnx import (FlatTensorOutputs, OnnxMismatchError, compare_with_pytorch, export_checked, export_onnx,
                   flat_outputs, onnx_bytes, onnx_latency, onnx_runner, onnx_session)
from .quantize import (TAIL_FLOOR, OnnxModel, QuantizationError, activation_scales, check_evaluable, classifier_decoder,
                       detector_decoder, evaluate_onnx, fp32_onnx_of, is_classifier, layer_sensitivity, onnx_model,
                       pad_batch, preprocessed_batches, quantize_onnx, sqnr_db)

__all__ = [
    'FoldMismatchError', 'deploy_config', 'fold_checked', 'fold_checkpoint', 'FlatTensorOutputs',
    'OnnxMismatchError', 'compare_with_pytorch', 'export_checked', 'export_onnx', 'flat_outputs', 'onnx_bytes',
    'onnx_latency', 'onnx_runner', 'onnx_session', 'OnnxModel', 'QuantizationError', 'activation_scales',
    'check_evaluable', 'classifier_decoder', 'detector_decoder', 'evaluate_onnx', 'fp32_onnx_of', 'is_classifier',
    'layer_sensitivity', 'onnx_model', 'pad_batch', 'preprocessed_batches', 'quantize_onnx', 'sqnr_db', 'TAIL_FLOOR'
]
