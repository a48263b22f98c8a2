"""tools/deployment/quantize.py on a tiny image-folder classifier: fold -> ONNX -> static INT8, both evaluated
with the config's evaluator in the MMEngine test loop, sizes and latency, the per-layer sensitivity report;
and its one-line refusals."""
import json
import os

import numpy as np
import pytest
import torch
from conftest import ROOT, make_image_folder

CONFIG = '''
_base_ = ['{root}/configs/fashion_mnist/resnet18-0.25x-reparam_1xb128_fashion-mnist.py']
data_preprocessor = dict(num_classes=2, mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], to_rgb=True)
model = dict(head=dict(num_classes=2))
pipeline = [dict(type='LoadImageFromFile'), dict(type='Resize', scale=(32, 32)), dict(type='PackInputs')]
def _loader(split):
    return dict(batch_size=4, num_workers=0, persistent_workers=False,
                sampler=dict(type='DefaultSampler', shuffle=False),
                dataset=dict(_delete_=True, type='CustomDataset', data_root='{data}', data_prefix=split,
                             pipeline=pipeline))
train_dataloader = _loader('train')
val_dataloader = _loader('val')
test_dataloader = _loader('val')
'''


@pytest.fixture(scope='module')
def tiny_classifier(tmp_path_factory):
    """(config, training-form checkpoint with trained-looking BN statistics, root)."""
    from mmcompact.utils import build_model, load_config
    root = tmp_path_factory.mktemp('quant')
    make_image_folder(root / 'data', per_class=6, size=32)
    config = root / 'tiny.py'
    config.write_text(CONFIG.format(root=ROOT, data=root / 'data'))
    model = build_model(load_config(str(config)))
    model.init_weights()
    model.train()
    with torch.no_grad():  # BN statistics of real-looking inputs, so the folded model is not degenerate
        for _ in range(3):
            model.extract_feat(torch.randn(8, 3, 32, 32))
    torch.save(dict(state_dict=model.state_dict(), meta=dict()), root / 'tiny.pth')
    return config, root / 'tiny.pth', root


def test_quantize_writes_int8_and_scores_both_with_the_config_evaluator(tiny_classifier, cli):
    config, checkpoint, root = tiny_classifier
    out = root / 'int8'
    code, stdout, stderr = cli('tools/deployment/quantize.py', config, checkpoint, out, '--shape', 32, 32,
                               '--calib-num', 8, '--per-channel', '--sensitivity', '--iters', 2)
    assert code == 0, stderr
    rows = {line.split()[0]: line.split() for line in stdout.splitlines() if line.startswith(('FP32', 'INT8'))}
    assert set(rows) == {'FP32', 'INT8'} and 'accuracy/top1' in stdout
    summary = json.loads((out / 'quantize.json').read_text())
    for name in ('FP32', 'INT8'):
        assert 0 <= summary['metrics'][name]['accuracy/top1'] <= 100
    assert summary['size_mb']['INT8'] < summary['size_mb']['FP32'] / 2  # int8 weights
    import onnx
    ops = {n.op_type for n in onnx.load(str(out / 'int8.onnx')).graph.node}
    assert {'QuantizeLinear', 'DequantizeLinear'} <= ops  # QDQ format
    sensitivity = summary['sensitivity']
    assert len(sensitivity) >= 20 and all(r['sqnr_db'] > 0 for r in sensitivity)  # every conv + the fc
    assert all(r['act_min'] <= r['act_max'] for r in sensitivity)
    assert (out / 'sensitivity.png').exists() and 'output SQNR' in (out / 'sensitivity.md').read_text()
    # the same run again refuses to replace its files
    code, _, stderr = cli('tools/deployment/quantize.py', config, checkpoint, out, '--shape', 32, 32)
    assert code == 1 and '--force' in stderr


def test_quantize_refuses_bad_input_in_one_line(tiny_classifier, cli):
    config, checkpoint, root = tiny_classifier
    code, _, stderr = cli('tools/deployment/quantize.py', config, checkpoint, root / 'big', '--shape', 32, 32,
                          '--calib-num', 1000)
    assert code == 1 and 'fewer than --calib-num 1000' in stderr and len(stderr.strip().splitlines()) == 1, stderr
    detector = os.path.join(ROOT, 'configs', 'demo', 'student_retinanet_ghostnetv3-0.5x_synthetic.py')
    code, _, stderr = cli('tools/deployment/quantize.py', detector, checkpoint, root / 'det', '--shape', 64, 64)
    assert code == 1 and 'ImageClassifier' in stderr and '--no-eval' in stderr, stderr
    code, _, stderr = cli('tools/deployment/quantize.py', config, root / 'nothing.pth', root / 'none', '--shape', 32,
                          32)
    assert code == 1 and 'nothing.pth' in stderr and len(stderr.strip().splitlines()) == 1, stderr


def test_sqnr_is_infinite_for_equal_outputs_and_falls_with_noise():
    from mmcompact.deploy import sqnr_db
    x = np.random.default_rng(0).normal(size=1000)
    assert sqnr_db(x, x) == float('inf')
    assert 19 < sqnr_db(x, x + 0.1 * np.random.default_rng(1).normal(size=1000)) < 21  # 10 log10(1 / 0.01)
