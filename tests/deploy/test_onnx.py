"""ONNX export (tools/deployment/export_onnx.py, mmcompact.deploy): folded classifiers and detectors run in onnxruntime
with PyTorch's outputs, at several batch sizes (dynamic batch)."""
import os

import pytest
import torch
from conftest import ROOT, randomize_bn

from mmcompact.reparam import reparameterize_model
from mmcompact.utils import build_model, load_config, random_inputs

pytest.importorskip('onnxruntime')
CLASSIFIER = os.path.join(ROOT, 'configs', 'ghostnetv3', 'ghostnetv3-0.5x_8xb128_in1k.py')
DETECTOR = os.path.join(ROOT, 'configs', 'demo', 'retinanet_ghostnetv3-0.5x_fpn_320.py')


def test_folded_classifier_in_onnxruntime_matches_pytorch(tmp_path):
    from mmcompact.deploy import compare_with_pytorch, export_onnx, onnx_session
    model = randomize_bn(build_model(load_config(CLASSIFIER))).eval()
    folded = reparameterize_model(model)
    path = str(tmp_path / 'ghostnetv3.onnx')
    names = export_onnx(folded, random_inputs((1, 3, 64, 64)), path)
    assert names == ['output0'] and os.listdir(tmp_path) == ['ghostnetv3.onnx']  # no temporary left
    gaps = compare_with_pytorch(onnx_session(path), folded, [random_inputs((n, 3, 64, 64), seed=n)
                                                             for n in (1, 3)])
    assert set(gaps) == {'bs1', 'bs3'} and max(g['rel'] for g in gaps.values()) < 1e-5


def test_export_tool_on_a_detector(tmp_path, cli):
    out = tmp_path / 'retinanet.onnx'
    code, stdout, stderr = cli('tools/deployment/export_onnx.py', DETECTOR, out, '--shape', 96, 96, '--batch-sizes', 1,
                               2,
                               '--iters', 1)
    assert code == 0, stderr
    assert 'onnxruntime vs PyTorch, bs2' in stdout and 'onnxruntime speed-up' in stdout and out.exists()
    import onnx
    graph = onnx.load(str(out)).graph
    levels = load_config(DETECTOR).model.neck.num_outs
    assert len(graph.output) == 2 * levels  # RetinaNet: class scores and box deltas for each FPN level
    assert not any(node.op_type == 'BatchNormalization' for node in graph.node)  # folded away
    code, _, stderr = cli('tools/deployment/export_onnx.py', DETECTOR, out, '--shape', 96, 96)
    assert code == 1 and '--force' in stderr  # never overwrites
    exported = out.read_bytes()
    code, _, stderr = cli('tools/deployment/export_onnx.py', DETECTOR, out, '--shape', 96, 96, '--force',
                          '--tolerance', '-1')
    assert code == 1 and '--tolerance' in stderr and 'nothing was written' in stderr
    code, _, stderr = cli('tools/deployment/export_onnx.py', DETECTOR, out, '--shape', 96, 96, '--force', '--rtol',
                          '-1')
    assert code == 1 and 'onnxruntime differs from PyTorch' in stderr and 'was not written' in stderr
    assert out.read_bytes() == exported and os.listdir(tmp_path) == ['retinanet.onnx']  # kept, no temporary
    code, _, stderr = cli('tools/deployment/export_onnx.py', DETECTOR, tmp_path / 'missing.pth', tmp_path / 'x.onnx')
    assert code == 1 and 'missing.pth' in stderr and not (tmp_path / 'x.onnx').exists()


class _ExportsDifferently(torch.nn.Module):
    """Adds 1 in eager PyTorch but not in the exported graph (a Python branch that export does not see)."""

    def forward(self, x):
        return x if torch.compiler.is_compiling() else x + 1


def test_an_export_that_onnxruntime_does_not_reproduce_is_not_written(tmp_path):
    from mmcompact.deploy import OnnxMismatchError, export_checked
    path = tmp_path / 'model.onnx'
    path.write_bytes(b'previous export')
    x = random_inputs((1, 3, 8, 8))
    with pytest.raises(FileExistsError, match='--force'):
        export_checked(_ExportsDifferently(), x, str(path), [x])
    with pytest.raises(OnnxMismatchError, match='was not written'):
        export_checked(_ExportsDifferently(), x, str(path), [x], overwrite=True)
    assert path.read_bytes() == b'previous export' and os.listdir(tmp_path) == ['model.onnx']
    session, gaps = export_checked(torch.nn.ReLU(), x, str(path), [x], overwrite=True)
    assert gaps['bs1']['abs'] == 0 and session.get_inputs()[0].name == 'input'
    assert path.read_bytes() != b'previous export'


def test_outputs_that_are_not_tensors_are_named():
    from mmcompact.deploy import flat_outputs
    assert [t.shape for t in flat_outputs(([torch.zeros(1)], {'a': torch.zeros(2)}))] == [(1,), (2,)]
    with pytest.raises(TypeError, match="mode='tensor'"):
        flat_outputs([torch.zeros(1), 'boxes'])
