"""The shipped distillation configs build (teacher checkpoint left out) and run one distillation step."""
import os

import pytest
import torch
from conftest import ROOT
from mmengine.structures import InstanceData

from mmcompact.utils import build_model, detection_inputs, load_config

CONFIGS = os.path.join(ROOT, 'configs', 'distill')


def test_classification_recipe_config():
    from mmpretrain.structures import DataSample
    cfg = load_config(os.path.join(CONFIGS, 'ghostnetv3-1.0x_resnet50_8xb128_in1k_kd.py'),
                      {'model.teacher_checkpoint': None})
    pipeline = [t['type'] for t in cfg.train_dataloader.dataset.pipeline]
    assert 'RandAugment' in pipeline and 'RandomErasing' in pipeline
    assert 'Mixup' not in cfg.pretty_text and 'CutMix' not in cfg.pretty_text  # they hurt compact models
    assert [h['type'] for h in cfg.custom_hooks] == ['EMAHook', 'mmcompact.StudentExportHook',
                                                     'mmcompact.RandomStateHook', 'mmcompact.NonFiniteLossHook']
    distiller = build_model(cfg)
    assert type(distiller.teacher.backbone).__name__ == 'ResNet' and distiller.teacher.backbone.depth == 50
    assert distiller.student.backbone.widen_factor == 1.0
    data = distiller.data_preprocessor(dict(inputs=list(torch.randint(0, 255, (2, 3, 64, 64)).float()),
                                            data_samples=[DataSample().set_gt_label(i) for i in (3, 7)]),
                                       True)
    losses = distiller(data['inputs'], data['data_samples'], mode='loss')
    assert set(losses) == {'loss', 'loss_kd'} and all(torch.isfinite(v) for v in losses.values())


@pytest.mark.parametrize('name, teacher, forward', [
    ('retinanet_ghostnetv3-1.0x_retinanet-r50_fpn_1x_coco_pkd.py', 'RetinaNet', 'head'),
    ('retinanet_ghostnetv3-1.0x_faster-rcnn-r50_fpn_1x_coco_pkd.py', 'FasterRCNN', 'features'),
])
def test_detection_configs(name, teacher, forward):
    cfg = load_config(os.path.join(CONFIGS, name), {'model.teacher_checkpoint': None})
    distiller = build_model(cfg)
    assert type(distiller.teacher).__name__ == teacher and distiller.teacher_forward == forward
    images, samples = detection_inputs(2, (128, 160))
    for s in samples:
        s.gt_instances = InstanceData(bboxes=torch.tensor([[8., 8., 64., 80.]]), labels=torch.tensor([1]))
    data = distiller.data_preprocessor(dict(inputs=list(images), data_samples=samples), True)
    losses = distiller(data['inputs'], data['data_samples'], mode='loss')
    assert 'loss_pkd_fpn' in losses and torch.isfinite(losses['loss_pkd_fpn'])
