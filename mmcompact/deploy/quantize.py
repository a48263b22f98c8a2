"""Static INT8 quantization of a folded model's ONNX graph with onnxruntime, calibrated on images drawn
through the config's own dataset and pipeline, evaluated through the MMEngine test loop with the config's
own evaluator, and a per-layer sensitivity report (which layer's quantization costs the most).

Inputs of every ONNX graph here are what the model's ``data_preprocessor`` produces: (N, 3, H, W) float32,
normalized."""
import copy
import math
import os
import tempfile
from typing import Callable, Dict, Iterator, List, Optional, Sequence

import numpy as np
import torch
from mmengine.config import Config
from mmengine.logging import MMLogger
from mmengine.model import BaseModel

from ..utils import build_model

CALIBRATION_METHODS = ('minmax', 'entropy', 'entropy-tails', 'percentile')
FORMATS = ('qdq', 'qoperator')
QUANTIZED_OPS = ('Conv', 'Gemm', 'MatMul')
# Entropy (KL-divergence) calibration as TensorRT does it (Migacz, "8-bit Inference with TensorRT", GTC 2017):
# a 2048-bin histogram per tensor, thresholds searched from 128 bins up. onnxruntime's quantize_static runs its
# Entropy calibrator with 128 bins and 128 quantized bins, where the only candidate threshold is the whole
# histogram: its "entropy" ranges equal MinMax's (measured: byte-identical INT8 models).
ENTROPY_BINS = dict(num_bins=2048, num_quantized_bins=128)
# The KL search's smallest candidates round nothing (one histogram bin per quantized level), so they win whenever
# the values beyond them are rare, however large: a range can shrink to 1/16 of the observed one, clipping the
# tail (on a detection map, the responses at the few object positions). 'entropy-tails' gives every tensor whose
# Entropy range is under TAIL_FLOOR of its observed range that observed (MinMax) range, and keeps Entropy's
# ranges elsewhere.
TAIL_FLOOR = 0.1


class QuantizationError(ValueError):
    """The model or the request cannot be quantized or evaluated as asked (one line, naming the fix)."""


def _ort_quantization():
    try:
        from onnxruntime import quantization
    except ImportError as err:
        raise ImportError('INT8 quantization needs onnxruntime: pip install onnxruntime (or .[deploy])') from err
    return quantization


def preprocessed_batches(cfg: Config, num_images: int, batch_size: int = 32, seed: int = 0,
                         pad_to: Optional[Sequence[int]] = None) -> List[np.ndarray]:
    """``num_images`` training images (a fixed random subset, ``seed``) through the config's *test* pipeline
    (no augmentation) and the model's ``data_preprocessor``: a list of (B, 3, H, W) float32 arrays, the
    calibration set; zero-padded at the bottom and right to ``pad_to`` (H, W) if given (see ``pad_batch``).
    QuantizationError when the training set is empty or smaller than ``num_images``."""
    from mmengine.registry import DATASETS
    if num_images < 1:
        raise QuantizationError(f'--calib-num must be >= 1, got {num_images}')
    preprocessor = data_preprocessor_of(cfg)  # (sets the config's default scope)
    dataset_cfg = copy.deepcopy(cfg.train_dataloader.dataset)
    dataset_cfg.pipeline = copy.deepcopy(cfg.test_dataloader.dataset.pipeline)
    dataset = DATASETS.build(dataset_cfg)
    if len(dataset) < num_images:
        raise QuantizationError(f'the training set of the config holds {len(dataset)} images, fewer than '
                                f'--calib-num {num_images}: lower --calib-num or check train_dataloader.dataset')
    order = np.random.default_rng(seed).permutation(len(dataset))[:num_images]
    batches = []
    for start in range(0, num_images, batch_size):
        samples = [dataset[int(i)] for i in order[start:start + batch_size]]
        data = preprocessor(dict(inputs=[s['inputs'] for s in samples],
                                 data_samples=[s['data_samples'] for s in samples]), False)
        inputs = data['inputs'].float()
        batches.append((pad_batch(inputs, pad_to) if pad_to is not None else inputs).numpy())
    return batches


def pad_batch(inputs: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """(N, C, h, w) zero-padded at the bottom and right to (N, C, H, W), ``size`` = (H, W): what mmdet's
    ``DetDataPreprocessor`` does to every batch (to its largest image), so a detector's predictions on the
    original pixels do not change. QuantizationError naming both sizes when the batch is larger."""
    h, w = inputs.shape[2:]
    if h > size[0] or w > size[1]:
        raise QuantizationError(f'a preprocessed batch is {h}x{w} (H x W), larger than the ONNX input '
                                f'{size[0]}x{size[1]}: pass --shape with at least the largest test image size')
    return torch.nn.functional.pad(inputs, (0, size[1] - w, 0, size[0] - h))


def data_preprocessor_of(cfg: Config) -> torch.nn.Module:
    """The data preprocessor the config's model is built with (its defaults filled in by the model class)."""
    return build_model(cfg).data_preprocessor


class _Reader:
    """onnxruntime's CalibrationDataReader protocol over a list of batches (``get_next`` until None)."""

    def __init__(self, input_name: str, batches: Sequence[np.ndarray]):
        self.input_name, self.batches = input_name, list(batches)
        self._iter: Optional[Iterator] = None
        self.rewind()

    def get_next(self) -> Optional[Dict[str, np.ndarray]]:
        batch = next(self._iter, None)
        return None if batch is None else {self.input_name: batch}

    def rewind(self) -> None:
        self._iter = iter(self.batches)


def _graph_input(onnx_path: str) -> tuple:
    """(name, (H, W)) of the ONNX file's image input (the graph input that is not an initialiser)."""
    import onnx
    graph = onnx.load(onnx_path, load_external_data=False).graph
    initialisers = {i.name for i in graph.initializer}
    value = next(i for i in graph.input if i.name not in initialisers)
    return value.name, tuple(d.dim_value or d.dim_param for d in value.type.tensor_type.shape.dim[2:])


def _entropy_cache(fp32_path: str, input_name: str, batches: Sequence[np.ndarray], tmp: str, cache: str,
                   keep_tails: bool) -> List[str]:
    """Entropy ranges of every calibrated tensor, written to the calibration cache ``cache``; returns the tensors
    whose range is under TAIL_FLOOR of their observed one, which with ``keep_tails`` get the observed range."""
    q = _ort_quantization()
    from onnxruntime.quantization.calibrate import TensorsData, create_calibrator, save_tensors_data
    calibrator = create_calibrator(fp32_path, list(QUANTIZED_OPS), os.path.join(tmp, 'augmented.onnx'),
                                   q.CalibrationMethod.Entropy, extra_options=dict(ENTROPY_BINS))
    calibrator.collect_data(_Reader(input_name, batches))
    ranges = calibrator.collector.compute_collection_result()  # {tensor: (low, high, histogram, edges)}
    clipped = []
    for name, (low, high, hist, edges) in ranges.items():
        observed_low, observed_high = calibrator.collector.histogram_dict[name][2:4]
        if high - low < TAIL_FLOOR * (observed_high - observed_low):
            clipped.append(name)
            if keep_tails:
                ranges[name] = (np.asarray(observed_low, low.dtype), np.asarray(observed_high, low.dtype), hist, edges)
    save_tensors_data(TensorsData(q.CalibrationMethod.Entropy, ranges), cache)
    return clipped


def quantize_onnx(fp32_path: str, int8_path: str, batches: Sequence[np.ndarray], method: str = 'minmax',
                  per_channel: bool = True, fmt: str = 'qdq', nodes: Optional[Sequence[str]] = None) -> str:
    """Static INT8 quantization (int8 weights and activations) of ``fp32_path`` into ``int8_path``,
    calibrated on ``batches`` with ``method`` (minmax, entropy, entropy-tails (see TAIL_FLOOR) or percentile),
    per-channel weights if ``per_channel``, in ``fmt`` (qdq: QuantizeLinear/DequantizeLinear pairs, what
    TensorRT and most NPU compilers read; qoperator: QLinearConv etc.). ``nodes``: quantize only these nodes
    (the sensitivity report). Entropy warns when it clipped tails. Returns ``int8_path``."""
    q = _ort_quantization()
    if method not in CALIBRATION_METHODS:
        raise QuantizationError(f'--calibrate {method!r}: choose one of {", ".join(CALIBRATION_METHODS)}')
    if fmt not in FORMATS:
        raise QuantizationError(f'--format {fmt!r}: choose one of {", ".join(FORMATS)}')
    if not batches:
        raise QuantizationError('no calibration data: --calib-num must select at least one image')
    input_name, expected = _graph_input(fp32_path)
    if any(tuple(b.shape[2:]) != expected for b in batches):
        got = next(tuple(b.shape[2:]) for b in batches if tuple(b.shape[2:]) != expected)
        raise QuantizationError(f'a calibration batch is {got} (H, W), the ONNX input {expected}: pass --shape '
                                f'{got[0]} {got[1]} (the size the config\'s test pipeline produces)')
    calibrate = {'minmax': q.CalibrationMethod.MinMax, 'entropy': q.CalibrationMethod.Entropy,
                 'entropy-tails': q.CalibrationMethod.Entropy, 'percentile': q.CalibrationMethod.Percentile}[method]
    with tempfile.TemporaryDirectory() as tmp:  # onnxruntime writes its augmented calibration model here
        cache = os.path.join(tmp, 'calibration.json')
        if calibrate == q.CalibrationMethod.Entropy:  # ranges computed here, handed over as a calibration cache
            clipped = _entropy_cache(fp32_path, input_name, batches, tmp, cache, method == 'entropy-tails')
            if method == 'entropy' and clipped and nodes is None:
                MMLogger.get_current_instance().warning(
                    f'Entropy calibration clipped {len(clipped)} activation ranges to under {TAIL_FLOOR:g} of their '
                    'observed range: --calibrate entropy-tails keeps those tails, minmax / percentile all ranges')
        q.quantize_static(
            fp32_path, int8_path, _Reader(input_name, batches),
            quant_format=q.QuantFormat.QDQ if fmt == 'qdq' else q.QuantFormat.QOperator,
            op_types_to_quantize=list(QUANTIZED_OPS), per_channel=per_channel,
            activation_type=q.QuantType.QInt8, weight_type=q.QuantType.QInt8, calibrate_method=calibrate,
            nodes_to_quantize=list(nodes) if nodes is not None else None,
            extra_options=dict(ActivationSymmetric=False, WeightSymmetric=True),
            calibration_cache_path=cache)
    return int8_path


def activation_scales(int8_path: str) -> Dict[str, float]:
    """{activation tensor: its scale} of a QDQ INT8 model: the per-tensor QuantizeLinear inputs that are not
    initialisers (weights are stored quantized). The range an activation keeps is 255 x its scale."""
    import onnx
    graph = onnx.load(int8_path).graph
    constants = {i.name: onnx.numpy_helper.to_array(i) for i in graph.initializer}
    return {n.input[0]: float(constants[n.input[1]]) for n in graph.node
            if n.op_type == 'QuantizeLinear' and n.input[0] not in constants and constants[n.input[1]].size == 1}


class OnnxModel(BaseModel):
    """A model whose network is an onnxruntime session, for MMEngine's test loop: ``predict`` runs the
    config's ``data_preprocessor``, the session, then ``decode(outputs, data_samples)`` (the PyTorch model's
    own post-processing), so the config's own evaluator scores it. The session's input must have the shape
    of the preprocessed batch (the export's ``--shape``), or, with ``pad`` (detectors), at least that size:
    the batch is then zero-padded to it (``pad_batch``); QuantizationError naming both otherwise."""

    def __init__(self, session, data_preprocessor: torch.nn.Module, decode: Callable, pad: bool = False):
        super().__init__(data_preprocessor=data_preprocessor)
        self.session, self.decode, self.pad = session, decode, pad
        self.input_name = session.get_inputs()[0].name
        self.input_hw = tuple(session.get_inputs()[0].shape[2:])

    def forward(self, inputs: torch.Tensor, data_samples=None, mode: str = 'predict'):
        if mode != 'predict':
            raise QuantizationError(f'an ONNX model only predicts, mode {mode!r} asked')
        if self.pad:
            inputs = pad_batch(inputs, self.input_hw)
            for sample in data_samples:
                sample.set_metainfo(dict(batch_input_shape=self.input_hw))
        elif tuple(inputs.shape[2:]) != self.input_hw:
            raise QuantizationError(f'the preprocessed test batch is {tuple(inputs.shape[2:])} (H, W), the ONNX '
                                    f'input {self.input_hw}: pass --shape {inputs.shape[2]} {inputs.shape[3]}')
        outputs = [torch.from_numpy(o) for o in self.session.run(None, {self.input_name: inputs.float().numpy()})]
        return self.decode(outputs, data_samples)


def classifier_decoder() -> Callable:
    """Logits (N, classes) -> data samples with ``pred_score`` / ``pred_label``, as mmpretrain's
    ``ClsHead.predict`` sets them."""
    def decode(outputs: List[torch.Tensor], data_samples):
        scores = outputs[0].softmax(dim=1)
        for sample, score, label in zip(data_samples, scores, scores.argmax(dim=1, keepdim=True)):
            sample.set_pred_score(score).set_pred_label(label)
        return data_samples
    return decode


def detector_decoder(detector: torch.nn.Module) -> Callable:
    """A single-stage mmdet detector's head outputs, flattened level by level (cls scores of every level,
    then box deltas, then e.g. centerness: what ``FlatTensorOutputs`` exports) -> data samples with
    ``pred_instances``, through the detector's own ``bbox_head.predict_by_feat`` (anchors, box decoding,
    score threshold, NMS of its ``test_cfg``) and ``add_pred_to_datasample``, rescaled to the original image."""
    num_levels = len(detector.bbox_head.prior_generator.strides)

    def decode(outputs: List[torch.Tensor], data_samples):
        groups = [outputs[i:i + num_levels] for i in range(0, len(outputs), num_levels)]
        with torch.no_grad():
            results = detector.bbox_head.predict_by_feat(
                *groups, batch_img_metas=[s.metainfo for s in data_samples], rescale=True)
        return detector.add_pred_to_datasample(data_samples, results)
    return decode


def onnx_model(cfg: Config, session) -> OnnxModel:
    """The ``OnnxModel`` that scores the config's model from ``session``'s outputs (``check_evaluable``)."""
    model = build_model(cfg).eval()
    if check_evaluable(cfg) == 'classifier':
        return OnnxModel(session, model.data_preprocessor, classifier_decoder())
    return OnnxModel(session, model.data_preprocessor, detector_decoder(model), pad=True)


def evaluate_onnx(cfg: Config, onnx_path: str, work_dir: str, threads: int = 0,
                  max_images: Optional[int] = None) -> Dict[str, float]:
    """The config's test metrics of the ONNX model ``onnx_path`` (what ``FlatTensorOutputs`` exports: a
    classifier's logits, a single-stage detector's head outputs): the config's test dataloader (its first
    ``max_images`` images if given) and evaluator in MMEngine's test loop."""
    from mmengine.runner import Runner

    from .onnx import onnx_session
    cfg = copy.deepcopy(cfg)
    if max_images is not None:
        cfg.test_dataloader.dataset.indices = max_images
    model = onnx_model(cfg, onnx_session(onnx_path, threads))
    runner = Runner(model=model, work_dir=work_dir, test_dataloader=cfg.test_dataloader,
                    test_cfg=dict(type='TestLoop'), test_evaluator=cfg.test_evaluator,
                    default_scope=cfg.get('default_scope', 'mmengine'), env_cfg=dict(cudnn_benchmark=False),
                    log_level='WARNING', experiment_name=f'onnx_eval_{os.path.basename(onnx_path)}')
    return runner.test()


def is_classifier(cfg: Config) -> bool:
    """Whether the config's model is an mmpretrain ``ImageClassifier`` (its ONNX output: the logits)."""
    return cfg.model.get('type', '').split('.')[-1] == 'ImageClassifier'


def check_evaluable(cfg: Config) -> str:
    """'classifier' or 'detector': how ``evaluate_onnx`` decodes the config's model from its ONNX outputs
    (a detector: a single-stage one, ``model.bbox_head`` and no ``model.roi_head``); QuantizationError for
    models whose predictions need more than the exported tensors (two-stage detectors: their RoI stage runs
    on proposals, not in the graph)."""
    if is_classifier(cfg):
        return 'classifier'
    if 'bbox_head' in cfg.model and 'roi_head' not in cfg.model:
        return 'detector'
    raise QuantizationError(f"model.type {cfg.model.get('type')!r}: INT8 evaluation from ONNX outputs runs for "
                            'mmpretrain ImageClassifier models and single-stage mmdet detectors (model.bbox_head, '
                            'no roi_head: RetinaNet, FCOS, ATSS, ...); pass --no-eval to write the INT8 model only')


def sqnr_db(reference: np.ndarray, approximation: np.ndarray) -> float:
    """Signal-to-quantization-noise ratio in dB: 10 log10(sum(ref^2) / sum((ref - approx)^2)); inf if equal."""
    noise = float(np.sum((reference.astype(np.float64) - approximation) ** 2))
    signal = float(np.sum(reference.astype(np.float64) ** 2))
    return math.inf if noise == 0 else 10 * math.log10(max(signal, 1e-30) / noise)


def layer_sensitivity(fp32_path: str, batches: Sequence[np.ndarray], method: str = 'minmax',
                      per_channel: bool = True, fmt: str = 'qdq', threads: int = 0) -> List[dict]:
    """Per quantizable node (Conv / Gemm / MatMul, graph order): its weight range, the range of its input
    activation over ``batches`` (the calibration set), and the SQNR (dB) of the model's output when only
    that node is quantized (INT8 weights and input), on ``batches``. Lower SQNR = more sensitive."""
    import onnx

    from .onnx import onnx_session
    model = onnx.load(fp32_path)
    weights = {i.name: onnx.numpy_helper.to_array(i) for i in model.graph.initializer}
    nodes = [n for n in model.graph.node if n.op_type in QUANTIZED_OPS]
    if not nodes:
        raise QuantizationError(f'{fp32_path} has no Conv / Gemm / MatMul node to quantize')
    input_name, _ = _graph_input(fp32_path)
    session = onnx_session(fp32_path, threads)
    reference = [session.run(None, {input_name: b})[0] for b in batches]
    ranges = _activation_ranges(model, [n.input[0] for n in nodes], input_name, batches, threads)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for node in nodes:
            path = quantize_onnx(fp32_path, os.path.join(tmp, 'one.onnx'), batches, method, per_channel, fmt,
                                 nodes=[node.name])
            one = onnx_session(path, threads)
            got = np.concatenate([one.run(None, {input_name: b})[0] for b in batches])
            weight = weights.get(node.input[1]) if len(node.input) > 1 else None
            rows.append(dict(
                node=node.name, op=node.op_type,
                weight_min=float(weight.min()) if weight is not None else math.nan,
                weight_max=float(weight.max()) if weight is not None else math.nan,
                act_min=ranges[node.input[0]][0], act_max=ranges[node.input[0]][1],
                sqnr_db=sqnr_db(np.concatenate(reference), got)))
    return rows


def _activation_ranges(model, tensors: Sequence[str], input_name: str, batches: Sequence[np.ndarray],
                       threads: int) -> Dict[str, tuple]:
    """(min, max) of each named tensor over ``batches``: the graph with those tensors made outputs, run."""
    import onnx

    from .onnx import onnx_session
    probe = copy.deepcopy(model)
    known = {o.name for o in probe.graph.output}
    for name in dict.fromkeys(tensors):
        if name not in known:
            probe.graph.output.append(onnx.ValueInfoProto(name=name))
    session = onnx_session(probe.SerializeToString(), threads)
    names = [o.name for o in session.get_outputs()]
    ranges = {name: (math.inf, -math.inf) for name in tensors}
    for batch in batches:
        for name, value in zip(names, session.run(None, {input_name: batch})):
            if name in ranges:
                low, high = ranges[name]
                ranges[name] = (min(low, float(value.min())), max(high, float(value.max())))
    return ranges


def fp32_onnx_of(cfg: Config, checkpoint: Optional[str], path: str, input_shape: Sequence[int],
                 tolerance: float = 1e-4) -> dict:
    """Fold the config's model (``checkpoint`` loaded; training form or folded) with the equivalence check,
    export it checked against onnxruntime at batch 1 and 2, and write it to ``path`` pre-processed for
    quantization (onnxruntime's ``quant_pre_process``: shape inference and graph optimisation, so every node
    the quantizer and the sensitivity report name is the node that runs). Returns the fold check."""
    from ..checkpoint import check_checkpoint_fits, checkpoint_weights, safe_load
    from ..utils import random_inputs
    from .fold import fold_checked
    from .onnx import export_checked
    model = build_model(cfg)
    if checkpoint is not None:
        saved = safe_load(checkpoint, 'cpu')
        check_checkpoint_fits(model.state_dict().keys(), saved, checkpoint, 'CHECKPOINT')
        model.load_state_dict(checkpoint_weights(saved))
    model.eval()
    example = random_inputs((1, *input_shape))
    folded, check = fold_checked(model, example, tolerance, '--tolerance', fuse_conv_bn=True)
    from onnxruntime.quantization.shape_inference import quant_pre_process
    with tempfile.TemporaryDirectory() as tmp:
        exported = os.path.join(tmp, 'exported.onnx')
        export_checked(folded, example, exported, [example, random_inputs((2, *input_shape), seed=2)])
        quant_pre_process(exported, os.path.join(tmp, 'pre.onnx'))
        os.replace(os.path.join(tmp, 'pre.onnx'), path)
    return check
