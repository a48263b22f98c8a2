"""ONNX export of folded classifiers and detectors, checked with onnxruntime against PyTorch.

What is exported is the network: ``model(x)`` in mode 'tensor' (mmpretrain: logits; mmdet: the raw head
outputs per FPN level). Box decoding and NMS stay in mmdet (as in mmdeploy's split export); the check compares
exactly these tensors. Needs ``pip install onnx onnxruntime onnxscript`` (the ``deploy`` extra).
"""
import os
from typing import Callable, Dict, List, Sequence, Tuple, Union

import torch
from torch import nn

from ..checkpoint.io import atomic_file


def flat_outputs(outputs) -> List[torch.Tensor]:
    """The tensors of a (nested list/tuple/dict) model output, depth first: the ONNX graph's outputs."""
    if isinstance(outputs, torch.Tensor):
        return [outputs]
    if isinstance(outputs, dict):
        return [t for key in outputs for t in flat_outputs(outputs[key])]
    if isinstance(outputs, (list, tuple)):
        return [t for item in outputs for t in flat_outputs(item)]
    raise TypeError(f'cannot export outputs of type {type(outputs).__name__}: the model must return tensors '
                    "(mmdet/mmpretrain models do in mode='tensor')")


class FlatTensorOutputs(nn.Module):
    """``model(x)`` (mode 'tensor') with its outputs flattened to a tuple of tensors."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        return tuple(flat_outputs(self.model(x)))


def _require_onnx():
    try:
        import onnx  # noqa: F401
        import onnxruntime
        import onnxscript  # noqa: F401
    except ImportError as err:
        raise ImportError(f'ONNX export needs onnx, onnxruntime and onnxscript ({err}): '
                          "pip install -e '.[deploy]'") from None
    return onnxruntime


class OnnxMismatchError(RuntimeError):
    """onnxruntime's outputs differ from PyTorch's beyond the tolerance (nothing was written)."""


def onnx_bytes(model: nn.Module, example: torch.Tensor, dynamic_batch: bool = True,
               opset: int = 18) -> Tuple[bytes, List[str]]:
    """The serialized ONNX graph of eval-mode ``model`` traced on ``example`` (N, 3, H, W), one
    self-contained model (batch dimension dynamic when ``dynamic_batch``), and its output names."""
    _require_onnx()
    model.eval()
    wrapper = FlatTensorOutputs(model).eval()
    with torch.no_grad():
        names = [f'output{i}' for i in range(len(wrapper(example)))]
    kwargs = dict(dynamic_shapes=({0: torch.export.Dim('batch', min=1, max=4096)},)) if dynamic_batch else {}
    program = torch.onnx.export(wrapper, (example,), dynamo=True, input_names=['input'], output_names=names,
                                opset_version=opset, external_data=False, verbose=False, **kwargs)
    return program.model_proto.SerializeToString(), names


def export_onnx(model: nn.Module, example: torch.Tensor, path: str, dynamic_batch: bool = True,
                opset: int = 18) -> List[str]:
    """``onnx_bytes`` written to ``path`` atomically; returns the output names."""
    data, names = onnx_bytes(model, example, dynamic_batch, opset)
    with atomic_file(path) as f:
        f.write(data)
    return names


def export_checked(model: nn.Module, example: torch.Tensor, path: str, check_inputs: Sequence[torch.Tensor],
                   rtol: float = 1e-4, dynamic_batch: bool = True, threads: int = 0,
                   overwrite: bool = False):
    """Export ``model`` to ``path`` only once onnxruntime has reproduced PyTorch on every input of
    ``check_inputs`` (largest gap <= ``rtol`` of the largest output, see ``compare_with_pytorch``).

    The graph is checked in memory and then written atomically, so a failed check (``OnnxMismatchError``)
    or any error leaves ``path`` as it was. Refuses an existing ``path`` unless ``overwrite``
    (``FileExistsError``). Returns ``(session, gaps)``: the onnxruntime session and the per-batch gaps.
    """
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f'{path} exists: choose another output path or pass --force to overwrite it')
    data, _ = onnx_bytes(model, example, dynamic_batch)
    session = onnx_session(data, threads)
    gaps = compare_with_pytorch(session, model, check_inputs)
    worst = max(gap['rel'] for gap in gaps.values())
    if worst > rtol:
        raise OnnxMismatchError(
            f'onnxruntime differs from PyTorch by {worst:.1e} of the largest output (> rtol {rtol:g}; per batch: '
            + ', '.join(f"{name} {gap['rel']:.1e}" for name, gap in gaps.items()) + f'); {path} was not written')
    with atomic_file(path) as f:
        f.write(data)
    return session, gaps


def onnx_session(model: Union[str, bytes], threads: int = 0):
    """An onnxruntime CPU session for an ONNX file path or serialized model; ``threads`` intra-op threads
    (0: onnxruntime's default)."""
    ort = _require_onnx()
    if isinstance(model, str) and not os.path.isfile(model):
        raise FileNotFoundError(f'ONNX file {model!r} does not exist')
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    # No busy-waiting between runs: spinning threads would steal the cores from whatever runs next (e.g.
    # PyTorch, timed in turn with it).
    options.add_session_config_entry('session.intra_op.allow_spinning', '0')
    return ort.InferenceSession(model, options, providers=['CPUExecutionProvider'])


def onnx_runner(session) -> Callable[[torch.Tensor], List[torch.Tensor]]:
    """``run(x)``: the session's outputs for a (N, 3, H, W) tensor, as tensors."""
    name = session.get_inputs()[0].name

    def run(x: torch.Tensor) -> List[torch.Tensor]:
        return [torch.from_numpy(out) for out in session.run(None, {name: x.numpy()})]

    return run


@torch.no_grad()
def compare_with_pytorch(session, model: nn.Module, inputs: Sequence[torch.Tensor]) -> Dict[str, float]:
    """Per input batch size: the largest |onnxruntime - PyTorch| over all outputs, relative to the largest
    |PyTorch output| (``rel``) and absolute (``abs``); ``ValueError`` naming both shapes if they differ."""
    run, results = onnx_runner(session), {}
    for x in inputs:
        model.eval()
        expected, got = flat_outputs(model(x)), run(x)
        if [tuple(t.shape) for t in expected] != [tuple(t.shape) for t in got]:
            raise ValueError(f'onnxruntime output shapes {[tuple(t.shape) for t in got]} != PyTorch '
                             f'{[tuple(t.shape) for t in expected]} for input {tuple(x.shape)}')
        diff = max(float((e.double() - g.double()).abs().max()) for e, g in zip(expected, got))
        scale = max(float(e.abs().max()) for e in expected)
        results[f'bs{x.shape[0]}'] = dict(abs=diff, rel=diff / max(scale, 1e-12))
    return results


def onnx_latency(paths: Dict[str, str], input_shape: Sequence[int], batch_sizes: Sequence[int] = (1, 16),
                 iters: int = 20, threads: int = 0) -> Dict[str, Dict[int, float]]:
    """Median CPU latency (ms) of each ONNX file at each batch size on random (B, *input_shape) inputs, the
    files timed round-robin (``time_interleaved``) so that machine load affects them alike."""
    from ..analysis import time_interleaved
    from ..utils import random_inputs
    runners = {name: onnx_runner(onnx_session(path, threads)) for name, path in paths.items()}
    results = {name: {} for name in paths}
    for bs in batch_sizes:
        x = random_inputs((bs, *input_shape))
        times = time_interleaved({name: (lambda run=run: run(x)) for name, run in runners.items()}, 3, iters)
        for name in paths:
            results[name][bs] = times[name]['ms']
    return results
