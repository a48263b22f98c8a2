"""GhostNetV3 inside a stock mmdet RetinaNet: train step, predict, fold with identical detections."""
import os

import pytest
import torch
from conftest import ROOT, match_detections, randomize_bn

from mmcompact.deploy import deploy_config, fold_checked
from mmcompact.utils import build_model, detection_inputs, load_config

CONFIG = os.path.join(ROOT, 'configs', 'demo', 'retinanet_ghostnetv3-0.5x_fpn_320.py')


@pytest.fixture(scope='module')
def detector():
    torch.manual_seed(0)
    return randomize_bn(build_model(load_config(CONFIG)))


def test_loss_on_a_random_image(detector):
    from mmengine.structures import InstanceData
    images, samples = detection_inputs(1, (160, 224))
    samples[0].gt_instances = InstanceData(bboxes=torch.tensor([[10., 20., 90., 120.]]),
                                           labels=torch.tensor([3]))
    detector.train()
    batch = detector.data_preprocessor(dict(inputs=list(images), data_samples=samples), True)
    losses = detector(batch['inputs'], batch['data_samples'], mode='loss')
    total = sum(sum(v) if isinstance(v, list) else v for k, v in losses.items() if 'loss' in k)
    assert set(losses) >= {'loss_cls', 'loss_bbox'} and torch.isfinite(total)
    total.backward()
    branch = detector.backbone.stages[3][0].ghost1.cheap.branches[2].conv.weight
    assert branch.grad is not None and branch.grad.abs().sum() > 0
    detector.zero_grad()


def test_predict_then_fold_gives_the_same_detections(detector):
    detector.eval()
    images, samples = detection_inputs(2, (192, 256))
    batch = detector.data_preprocessor(dict(inputs=list(images), data_samples=samples), False)
    with torch.no_grad():
        expected = detector(batch['inputs'], batch['data_samples'], mode='predict')
    folded, check = fold_checked(detector, batch['inputs'], tolerance=1e-5)
    assert check['max_abs_diff'] <= 1e-5
    with torch.no_grad():
        got = folded(batch['inputs'], batch['data_samples'], mode='predict')
    for a, b in zip(expected, got):
        assert len(a.pred_instances) == 100
        match = match_detections(a, b)
        assert match['matched'] == match['reference'] == match['candidate']
        assert match['max_score_diff'] <= 1e-5
    deployed = build_model(deploy_config(load_config(CONFIG))[0]).eval()
    deployed.load_state_dict(folded.state_dict(), strict=True)
