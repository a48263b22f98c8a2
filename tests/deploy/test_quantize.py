"""tools/deployment/quantize.py on a tiny image-folder classifier: fold -> ONNX -> static INT8, both evaluated
with the config's evaluator in the MMEngine test loop, sizes and latency, the per-layer sensitivity report;
and its one-line refusals."""
import copy
import json

import numpy as np
import pytest
import torch
from conftest import ROOT, make_image_folder, match_detections, randomize_bn

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
    code, _, stderr = cli('tools/deployment/quantize.py', config, checkpoint, root / 'shape', '--shape', 48, 48,
                          '--calib-num', 4)
    assert code == 1 and 'pass --shape 32 32' in stderr and len(stderr.strip().splitlines()) == 1, stderr
    two_stage = root / 'faster.py'
    two_stage.write_text("_base_ = ['mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py']\n")
    code, _, stderr = cli('tools/deployment/quantize.py', two_stage, checkpoint, root / 'det', '--shape', 64, 64)
    assert code == 1 and 'single-stage' in stderr and '--no-eval' in stderr, stderr
    code, _, stderr = cli('tools/deployment/quantize.py', config, root / 'nothing.pth', root / 'none', '--shape', 32,
                          32)
    assert code == 1 and 'nothing.pth' in stderr and len(stderr.strip().splitlines()) == 1, stderr


def test_entropy_calibration_clips_rare_outliers_that_minmax_keeps(tiny_classifier, tmp_path):
    """--calibrate entropy is KL-divergence calibration, not MinMax under another name: on inputs with rare large
    values it picks narrower activation ranges (onnxruntime's own 128-bin default gives MinMax's exactly)."""
    from mmcompact.deploy import activation_scales, fp32_onnx_of, quantize_onnx
    from mmcompact.utils import load_config
    config, checkpoint, _ = tiny_classifier
    fp32 = tmp_path / 'fp32.onnx'
    fp32_onnx_of(load_config(str(config)), str(checkpoint), str(fp32), (3, 32, 32))
    rng = np.random.default_rng(0)
    batches = [rng.normal(size=(2, 3, 32, 32)).astype(np.float32) for _ in range(8)]
    batches[0][0, :, 0, 0] = 40.0  # one outlier pixel among 8 x 2 x 3 x 32 x 32 values
    scales = {m: activation_scales(quantize_onnx(str(fp32), str(tmp_path / f'{m}.onnx'), batches, m))
              for m in ('minmax', 'entropy')}
    assert scales['minmax'].keys() == scales['entropy'].keys() and len(scales['minmax']) >= 10
    narrower = [n for n, v in scales['entropy'].items() if v < 0.9 * scales['minmax'][n]]
    assert len(narrower) >= len(scales['minmax']) // 2, (narrower, scales)


def test_entropy_tails_gives_clipped_ranges_their_observed_range_and_keeps_the_rest(tiny_classifier, tmp_path):
    """A huge rare outlier makes Entropy clip ranges to under TAIL_FLOOR of MinMax's; entropy-tails gives exactly
    those MinMax's range and keeps Entropy's everywhere else."""
    from mmcompact.deploy import TAIL_FLOOR, activation_scales, fp32_onnx_of, quantize_onnx
    from mmcompact.utils import load_config
    config, checkpoint, _ = tiny_classifier
    fp32 = tmp_path / 'fp32.onnx'
    fp32_onnx_of(load_config(str(config)), str(checkpoint), str(fp32), (3, 32, 32))
    rng = np.random.default_rng(0)
    batches = [rng.normal(size=(2, 3, 32, 32)).astype(np.float32) for _ in range(8)]
    batches[0][0, :, 0, 0] = 400.0  # one huge outlier pixel among 8 x 2 x 3 x 32 x 32 values
    scales = {m: activation_scales(quantize_onnx(str(fp32), str(tmp_path / f'{m}.onnx'), batches, m))
              for m in ('minmax', 'entropy', 'entropy-tails')}
    clipped = {t for t, v in scales['entropy'].items() if v < TAIL_FLOOR * scales['minmax'][t]}
    assert clipped and len(clipped) < len(scales['minmax']), scales
    for tensor, scale in scales['entropy-tails'].items():
        expected = scales['minmax' if tensor in clipped else 'entropy'][tensor]
        assert scale == pytest.approx(expected, rel=1e-3), (tensor, scale, expected)


def test_sqnr_is_infinite_for_equal_outputs_and_falls_with_noise():
    from mmcompact.deploy import sqnr_db
    x = np.random.default_rng(0).normal(size=1000)
    assert sqnr_db(x, x) == float('inf')
    assert 19 < sqnr_db(x, x + 0.1 * np.random.default_rng(1).normal(size=1000)) < 21  # 10 log10(1 / 0.01)


DETECTOR = """
_base_ = ['{root}/configs/demo/student_retinanet_ghostnetv3-0.5x_synthetic.py']
data_root = '{data}/'
model = dict(test_cfg=dict(score_thr=0.05, max_per_img=100))
train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(batch_size=2, dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val.json')
test_evaluator = val_evaluator
"""


def _tiny_detector(root, size_range):
    """(config, checkpoint) of the demo's RetinaNet student with random weights, on synthetic COCO images."""
    from mmcompact.data import make_coco_detection
    from mmcompact.utils import build_model, load_config
    make_coco_detection(str(root / 'coco'), num_train=6, num_val=4, num_classes=3, size_range=size_range)
    config = root / 'det.py'
    config.write_text(DETECTOR.format(root=ROOT, data=root / 'coco'))
    torch.manual_seed(0)  # the same weights whatever ran before in this process
    model = build_model(load_config(str(config)))
    model.init_weights()
    # Initialised (head convs std 0.01), every anchor scores about the focal-loss prior 0.01 whatever the image:
    # near-ties that decide which boxes make the cut. Kaiming head convs make the scores depend on the image
    # and well separated; the class bias puts some boxes per image above score_thr.
    for conv in (m for m in model.bbox_head.modules() if isinstance(m, torch.nn.Conv2d)):
        torch.nn.init.kaiming_normal_(conv.weight)
    torch.nn.init.constant_(model.bbox_head.retina_cls.bias, -5.0)
    torch.save(dict(state_dict=randomize_bn(model).state_dict(), meta=dict()), root / 'det.pth')
    return config, root / 'det.pth'


def test_a_detector_onnx_model_predicts_the_boxes_of_the_folded_pytorch_detector(tmp_path):
    """The ONNX head outputs decoded by the detector's own bbox_head give the folded PyTorch detector's boxes."""
    from mmengine.runner import Runner

    from mmcompact.deploy import check_evaluable, fold_checked, fp32_onnx_of, onnx_model, onnx_session
    from mmcompact.utils import build_model, load_config
    config, checkpoint = _tiny_detector(tmp_path, (128, 128))  # 160x160 after the test pipeline
    cfg = load_config(str(config))
    assert check_evaluable(cfg) == 'detector'
    fp32_onnx_of(cfg, str(checkpoint), str(tmp_path / 'fp32.onnx'), (3, 160, 160))
    model = build_model(cfg)
    model.load_state_dict(torch.load(checkpoint, weights_only=True)['state_dict'])
    folded, _ = fold_checked(model.eval(), torch.randn(1, 3, 160, 160), 1e-4, '--tolerance', fuse_conv_bn=True)
    batch = next(iter(Runner.build_dataloader(cfg.test_dataloader)))
    with torch.no_grad():
        expected = folded.test_step(copy.deepcopy(batch))
        got = onnx_model(cfg, onnx_session(str(tmp_path / 'fp32.onnx'))).test_step(copy.deepcopy(batch))
    for reference, candidate in zip(expected, got):
        match = match_detections(reference, candidate)
        assert 0 < match['reference'] == match['candidate'] == match['matched'] < 100, match
        assert match['max_score_diff'] < 1e-4


def test_quantize_scores_a_detector_with_coco_map_on_images_of_varying_size(tmp_path, cli):
    config, checkpoint = _tiny_detector(tmp_path, (64, 128))  # up to 160x160 after resizing and padding
    out = tmp_path / 'int8'
    code, stdout, stderr = cli('tools/deployment/quantize.py', config, checkpoint, out, '--shape', 160, 160,
                               '--calib-num', 1, '--per-channel', '--iters', 2,  # one image: smaller than 160x160
                               '--cfg-options', 'test_dataloader.batch_size=1')  # so are test batches of one
    assert code == 0, stderr
    summary = json.loads((out / 'quantize.json').read_text())
    for name in ('FP32', 'INT8'):
        assert 0 <= summary['metrics'][name]['coco/bbox_mAP'] <= 1
    assert 'coco/bbox_mAP' in stdout and summary['size_mb']['INT8'] < summary['size_mb']['FP32'] / 2


def test_pad_batch_pads_bottom_right_with_zeros_and_refuses_larger_batches():
    from mmcompact.deploy import QuantizationError, pad_batch
    x = torch.ones(2, 3, 5, 7)
    padded = pad_batch(x, (8, 8))
    assert padded.shape == (2, 3, 8, 8) and torch.equal(padded[:, :, :5, :7], x) and padded.sum() == x.sum()
    with pytest.raises(QuantizationError, match='5x7 .* larger than the ONNX input 4x8'):
        pad_batch(x, (4, 8))


def test_quantize_scores_an_int8_detector_without_detections_as_map_0(tmp_path, cli, monkeypatch):
    """CocoMetric reports no metric at all when no box passes the score threshold (what entropy calibration
    did to the study's detectors): the tool scores that model 0 and says so instead of a KeyError."""
    import mmcompact.deploy
    config, checkpoint = _tiny_detector(tmp_path, (128, 128))
    evaluate_onnx = mmcompact.deploy.evaluate_onnx
    monkeypatch.setattr(mmcompact.deploy, 'evaluate_onnx', lambda cfg, path, *args, **kwargs: {} if
                        path.endswith('int8.onnx') else evaluate_onnx(cfg, path, *args, **kwargs))
    out = tmp_path / 'int8'
    code, stdout, stderr = cli('tools/deployment/quantize.py', config, checkpoint, out, '--shape', 160, 160,
                               '--calib-num', 1, '--iters', 1)
    assert code == 0, stderr
    assert 'INT8: no detection above the score threshold: coco/bbox_mAP 0' in stdout
    summary = json.loads((out / 'quantize.json').read_text())
    assert summary['metrics']['INT8'] == {'coco/bbox_mAP': 0.0} and 'coco/bbox_mAP' in summary['metrics']['FP32']
