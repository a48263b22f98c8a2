"""Distiller unit behaviour: frozen, hidden teacher; recorders; connectors; clear errors."""
import copy

import pytest
import torch
from mmengine.registry import MODELS, DefaultScope
from mmpretrain.structures import DataSample

import mmcompact  # noqa: F401
from mmcompact.checkpoint import save_atomic

MEAN, STD = [123.675, 116.28, 103.53], [58.395, 57.12, 57.375]
STUDENT = dict(type='ImageClassifier',
               backbone=dict(type='mmcompact.GhostNetV3', widen_factor=0.5, out_indices=(4, 9)),
               neck=dict(type='GlobalAveragePooling'),
               head=dict(type='mmcompact.GhostNetV3ClsHead', num_classes=4, in_channels=480),
               data_preprocessor=dict(type='ClsDataPreprocessor', mean=MEAN, std=STD, num_classes=4))
TEACHER = dict(type='ImageClassifier', backbone=dict(type='ResNet', depth=18, out_indices=(1, 3)),
               neck=dict(type='GlobalAveragePooling'),
               head=dict(type='LinearClsHead', num_classes=4, in_channels=512))
LOGIT_KD = dict(student_recorders=dict(logits='head.fc'), teacher_recorders=dict(logits='head.fc'),
                distill_losses=dict(loss_kd=dict(type='KLDivergence', tau=4, student='logits',
                                                 teacher='logits')))


def build(**kwargs):
    cfg = dict(type='mmcompact.Distiller', student=STUDENT, teacher=TEACHER)
    cfg.update(kwargs)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return MODELS.build(cfg)


def batch(distiller, n=2, size=64):
    images = list(torch.randint(0, 255, (n, 3, size, size)).float())
    samples = [DataSample().set_gt_label(i % 4) for i in range(n)]
    return distiller.data_preprocessor(dict(inputs=images, data_samples=samples), True)


def test_teacher_is_frozen_hidden_and_unchanged_by_training():
    distiller = build(**LOGIT_KD)
    teacher = distiller.teacher
    before = copy.deepcopy(teacher.state_dict())
    assert not any(k.startswith('teacher') for k in distiller.state_dict())
    assert all(p is not q for p in distiller.parameters() for q in teacher.parameters())
    assert not any(p.requires_grad for p in teacher.parameters())
    optimizer = torch.optim.SGD(distiller.parameters(), lr=0.1)
    distiller.train()
    assert not any(m.training for m in teacher.modules())
    for _ in range(2):
        data = batch(distiller)
        losses = distiller(data['inputs'], data['data_samples'], mode='loss')
        assert set(losses) == {'loss', 'loss_kd'}
        optimizer.zero_grad()
        sum(losses.values()).backward()
        assert all(p.grad is None for p in teacher.parameters())
        optimizer.step()
    for key, value in teacher.state_dict().items():
        assert torch.equal(value, before[key]), key  # BN statistics included: eval mode all along


def test_copies_share_the_teacher_and_export_keys_are_plain_student_keys():
    distiller = build(**LOGIT_KD)
    clone = copy.deepcopy(distiller)
    assert clone.teacher is distiller.teacher and clone.student is not distiller.student
    keys = distiller.student_state_dict()
    assert set(keys) == set(distiller.student.state_dict())


def test_tuple_records_pair_up_level_by_level():
    distiller = build(teacher=STUDENT, student_recorders=dict(feats='backbone'),
                      teacher_recorders=dict(feats='backbone'),
                      distill_losses=dict(loss_pkd=dict(type='PKDLoss', student='feats', teacher='feats')))
    data = batch(distiller)
    with distiller.student_recorder.recording(), distiller.teacher_recorder.recording():
        distiller.student.extract_feat(data['inputs'])
        distiller.run_teacher(data['inputs'])
        s, t = distiller.student_recorder.get('feats'), distiller.teacher_recorder.get('feats')
        assert [x.shape[1] for x in s] == [20, 480]
        pkd = distiller.distill_losses['loss_pkd']
        expected = (pkd(s[0], t[0]) + pkd(s[1], t[1])) / 2
        assert torch.allclose(distiller._paired_loss('loss_pkd', pkd, s, t, None, {}), expected)


def test_connector_channel_mismatch_is_named():
    distiller = build(
        student_recorders=dict(feats='backbone'), teacher_recorders=dict(feats='backbone'),
        connectors=dict(align=dict(type='ConvBNConnector', in_channels=20, out_channels=128, spatial='pool')),
        distill_losses=dict(loss_pkd=dict(type='PKDLoss', student='feats', teacher='feats',
                                          connector='align')))
    data = batch(distiller)
    with pytest.raises(ValueError, match=r"connector 'align' takes 20 channels .*\(2, 480, 2, 2\)"):
        distiller(data['inputs'], data['data_samples'], mode='loss')


def test_wrong_module_path_lists_close_matches():
    with pytest.raises(KeyError, match=r"no module 'head.fcc'.*'head.fc'"):
        build(student_recorders=dict(logits='head.fcc'))


def test_shape_mismatch_names_both_shapes_and_the_fix():
    distiller = build(student_recorders=dict(f='backbone.stages.9'), teacher_recorders=dict(f='backbone.layer4'),
                      distill_losses=dict(loss_mse=dict(type='FeatureMSELoss', student='f', teacher='f')))
    data = batch(distiller)
    with pytest.raises(ValueError, match=r'student shape \(2, 480, 2, 2\) != teacher shape \(2, 512, 2, 2\).*'
                                         r'ConvBNConnector'):
        distiller(data['inputs'], data['data_samples'], mode='loss')


def test_bad_configs_fail_before_training(tmp_path):
    with pytest.raises(FileNotFoundError, match='teacher_checkpoint'):
        build(teacher_checkpoint=str(tmp_path / 'missing.pth'), **LOGIT_KD)
    with pytest.raises(ValueError, match=r'relative.*fileDirname'):
        build(teacher='configs/some_teacher.py')
    with pytest.raises(KeyError, match='not a student recorder'):
        build(distill_losses=dict(loss_kd=dict(type='KLDivergence', student='x', teacher='y')))
    with pytest.raises(ValueError, match="must start with 'loss_'"):
        build(student_recorders=dict(a='head'), teacher_recorders=dict(a='head'),
              distill_losses=dict(kd=dict(type='KLDivergence', student='a', teacher='a')))


def test_teacher_checkpoint_loads_and_teacher_runs_only_what_is_recorded(tmp_path):
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        trained = MODELS.build(TEACHER)
    path = save_atomic({'state_dict': trained.state_dict()}, str(tmp_path / 'teacher.pth'))
    distiller = build(teacher_checkpoint=path, student_recorders=dict(f='backbone.stages.9'),
                      teacher_recorders=dict(f='backbone.layer4'),
                      connectors=dict(c=dict(type='ConvBNConnector', in_channels=480, out_channels=512)),
                      distill_losses=dict(loss_pkd=dict(type='PKDLoss', student='f', teacher='f',
                                                        connector='c')))
    assert torch.equal(distiller.teacher.backbone.conv1.weight, trained.backbone.conv1.weight)
    assert distiller.teacher_forward == 'features'  # nothing recorded in the head: the head never runs
    calls = []
    distiller.teacher.head.register_forward_hook(lambda *a: calls.append(1))
    data = batch(distiller)
    distiller(data['inputs'], data['data_samples'], mode='loss')
    assert build(**LOGIT_KD).teacher_forward == 'head'
    assert calls == []


def test_teacher_input_conversion_to_another_normalisation_and_size():
    distiller = build(teacher_recorders=dict(x=dict(module='backbone', kind='input')),
                      student_recorders=dict(logits='head.fc'), teacher_input=dict(
                          mean=[0., 0., 0.], std=[255., 255., 255.], size=(32, 32)))
    raw = torch.randint(0, 255, (1, 3, 64, 64)).float()
    data = distiller.data_preprocessor(dict(inputs=list(raw), data_samples=[DataSample().set_gt_label(0)]))
    with distiller.teacher_recorder.recording():
        distiller.run_teacher(data['inputs'])
        seen = distiller.teacher_recorder.get('x')
    expected = torch.nn.functional.interpolate(raw / 255., size=(32, 32), mode='bilinear', align_corners=False)
    assert seen.shape == (1, 3, 32, 32) and torch.allclose(seen, expected, atol=1e-4)


def test_distill_loss_named_like_a_student_loss_is_refused_at_build_time():
    """A detector's head loss 'loss_cls' reused as a distill loss name: refused before training."""
    from conftest import ROOT
    demo = f'{ROOT}/configs/demo'
    cfg = dict(type='mmcompact.Distiller', student=f'{demo}/student_retinanet_ghostnetv3-0.5x_synthetic.py',
               teacher=f'{demo}/teacher_retinanet_r18_fpn_synthetic.py',
               student_recorders=dict(fpn='neck'), teacher_recorders=dict(fpn='neck'),
               distill_losses=dict(loss_cls=dict(type='PKDLoss', student='fpn', teacher='fpn')))
    with DefaultScope.overwrite_default_scope('mmdet'), \
            pytest.raises(ValueError, match=r"\['loss_cls'\] equal the student's own loss key.*loss_bbox"):
        MODELS.build(cfg)


def test_collision_seen_only_at_run_time_is_still_an_error(monkeypatch):
    """A student whose loss keys the build-time check cannot foresee: the loss step refuses to overwrite."""
    distiller = build(**LOGIT_KD)
    task_loss = distiller.student.loss
    monkeypatch.setattr(distiller.student, 'loss', lambda *a, **k: {'loss_kd': task_loss(*a, **k)['loss']})
    data = batch(distiller)
    with pytest.raises(ValueError, match="distill loss 'loss_kd' equals a loss key of the student"):
        distiller(data['inputs'], data['data_samples'], mode='loss')


def test_extra_inputs_reach_dkd_and_a_user_loss_through_the_distiller():
    from mmcompact.distill.losses import _DistillLoss
    from mmcompact.registry import MODELS as MMC_MODELS
    seen = {}

    @MMC_MODELS.register_module(force=True)
    class RecordingLoss(_DistillLoss):
        extra_inputs = ('labels', 'data_samples')

        def compute(self, student, teacher, labels=None, data_samples=None):
            seen.update(labels=labels.tolist(), n=len(data_samples))
            return (student - teacher).abs().mean()

    distiller = build(student_recorders=dict(logits='head.fc'), teacher_recorders=dict(logits='head.fc'),
                      distill_losses=dict(loss_dkd=dict(type='DKDLoss', student='logits', teacher='logits'),
                                          loss_user=dict(type='RecordingLoss', student='logits',
                                                         teacher='logits')))
    data = batch(distiller, n=4)
    losses = distiller(data['inputs'], data['data_samples'], mode='loss')
    assert set(losses) == {'loss', 'loss_dkd', 'loss_user'} and torch.isfinite(losses['loss_dkd'])
    assert seen == dict(labels=[0, 1, 2, 3], n=4)


def test_unknown_extra_input_is_refused_at_build_time():
    from mmcompact.distill.losses import _DistillLoss
    from mmcompact.registry import MODELS as MMC_MODELS

    @MMC_MODELS.register_module(force=True)
    class NeedsBoxes(_DistillLoss):
        extra_inputs = ('gt_boxes', )

    with pytest.raises(ValueError, match=r"declares extra_inputs \['gt_boxes'\]"):
        build(student_recorders=dict(logits='head.fc'), teacher_recorders=dict(logits='head.fc'),
              distill_losses=dict(loss_x=dict(type='NeedsBoxes', student='logits', teacher='logits')))
