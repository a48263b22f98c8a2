"""Distillation through MMEngine's Runner on CPU: classification and detection, EMA, schedule, resume,
export; the teacher never lands in a checkpoint or in the EMA model."""
import copy
import os

import numpy as np
import pytest
import torch
from conftest import ROOT, make_coco, make_image_folder
from mmengine.config import Config
from mmengine.registry import MODELS, DefaultScope
from mmengine.runner import Runner
from test_distiller import LOGIT_KD, STUDENT, TEACHER

from mmcompact.checkpoint import safe_load
from mmcompact.engine import schedule_factor
from mmcompact.reparam import max_abs_diff

CLS_PIPELINE = [dict(type='LoadImageFromFile'), dict(type='Resize', scale=(48, 48)), dict(type='PackInputs')]


def cls_config(data_root, work_dir, max_iters, schedule=dict(schedule='constant'), **extra):
    def loader(split):
        return dict(batch_size=4, num_workers=0, sampler=dict(type='DefaultSampler', shuffle=False),
                    dataset=dict(type='CustomDataset', data_root=str(data_root), data_prefix=split,
                                 pipeline=CLS_PIPELINE))
    student = copy.deepcopy(STUDENT)
    student['head']['num_classes'] = student['data_preprocessor']['num_classes'] = 2
    teacher = copy.deepcopy(TEACHER)
    teacher['head']['num_classes'] = 2
    cfg = dict(
        default_scope='mmpretrain', work_dir=str(work_dir), randomness=dict(seed=0),
        model=dict(type='mmcompact.Distiller', student=student, teacher=teacher, **LOGIT_KD),
        train_dataloader=loader('train'), val_dataloader=loader('val'),
        val_evaluator=dict(type='Accuracy', topk=(1, )), val_cfg=dict(),
        train_cfg=dict(by_epoch=False, max_iters=max_iters, val_interval=max_iters),
        optim_wrapper=dict(optimizer=dict(type='Adam', lr=2e-3)),
        custom_hooks=[dict(type='EMAHook', momentum=0.2),
                      dict(type='mmcompact.DistillLossWeightHook', **schedule),
                      dict(type='mmcompact.StudentExportHook', check_shape=(1, 3, 48, 48))],
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=2, by_epoch=False),
                           logger=dict(type='LoggerHook', interval=1)))
    cfg.update(extra)
    return Config(cfg)


def history(runner, key):
    return np.asarray(runner.message_hub.get_scalar(f'train/{key}').data[0])


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
    return make_image_folder(tmp_path_factory.mktemp('cls'))


@pytest.fixture(scope='module')
def cls_run(data_root, tmp_path_factory):
    work_dir = tmp_path_factory.mktemp('cls_run')
    runner = Runner.from_cfg(cls_config(data_root, work_dir, max_iters=8))
    runner.train()
    return runner, work_dir


def test_classification_kd_loss_decreases_and_student_is_evaluated(cls_run):
    runner, _ = cls_run
    kd = history(runner, 'loss_kd')
    assert len(kd) == 8 and kd[-2:].mean() < kd[:2].mean()
    assert 'val/accuracy/top1' in runner.message_hub.log_scalars  # the student, through the evaluator


def test_teacher_is_absent_from_checkpoints_and_from_the_ema_model(cls_run):
    runner, work_dir = cls_run
    checkpoint = safe_load(str(work_dir / 'iter_8.pth'))
    for key in ('state_dict', 'ema_state_dict'):
        assert checkpoint[key] and not any('teacher' in k for k in checkpoint[key]), key
    ema_hook = next(h for h in runner.hooks if type(h).__name__ == 'EMAHook')
    assert ema_hook.ema_model.module.teacher is runner.model.teacher


def test_exported_student_loads_into_the_plain_and_the_deploy_student_config(cls_run):
    runner, work_dir = cls_run
    student_cfg = copy.deepcopy(runner.cfg.model.student)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        plain = MODELS.build(student_cfg).eval()
        deploy_cfg = copy.deepcopy(student_cfg)
        deploy_cfg['backbone']['deploy'] = True
        deployed = MODELS.build(deploy_cfg).eval()
    plain.load_state_dict(safe_load(str(work_dir / 'student.pth'))['state_dict'], strict=True)
    deployed.load_state_dict(safe_load(str(work_dir / 'student_deploy.pth'))['state_dict'], strict=True)
    # MMEngine's EMAHook saves the EMA weights as the checkpoint's state_dict (the raw ones as
    # ema_state_dict): the exported student holds the EMA weights.
    ema = safe_load(str(work_dir / 'iter_8.pth'))['state_dict']
    assert torch.equal(plain.backbone.stem.conv.weight, ema['student.backbone.stem.conv.weight'])
    x = torch.randn(2, 3, 48, 48)
    with torch.no_grad():
        assert max_abs_diff(plain(x), deployed(x)) <= 1e-5


def test_resume_restores_the_loss_weight_schedule(data_root, tmp_path):
    schedule = dict(schedule='linear_warmup', warmup=6)
    Runner.from_cfg(cls_config(data_root, tmp_path, max_iters=4, schedule=schedule)).train()
    resumed = Runner.from_cfg(cls_config(data_root, tmp_path, max_iters=6, schedule=schedule, resume=True))
    resumed.train()
    weights = history(resumed, 'distill_weight')[-2:]
    assert list(weights) == [schedule_factor('linear_warmup', i, 6, warmup=6) for i in (4, 5)]
    assert resumed.model.distill_weight == 1.0


DET_STUDENT = os.path.join(ROOT, 'configs', 'demo', 'retinanet_ghostnetv3-0.5x_fpn_320.py')


def det_config(data_root, work_dir):
    pipeline = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', with_bbox=True),
                dict(type='Resize', scale=(128, 96), keep_ratio=True), dict(type='PackDetInputs')]
    metainfo = dict(classes=('class0', 'class1'))

    def loader(train):
        return dict(batch_size=2, num_workers=0, sampler=dict(type='DefaultSampler', shuffle=False),
                    batch_sampler=dict(type='AspectRatioBatchSampler') if train else None,
                    dataset=dict(type='CocoDataset', data_root=str(data_root), metainfo=metainfo,
                                 ann_file='annotations.json', data_prefix=dict(img='images/'),
                                 pipeline=pipeline, filter_cfg=dict(filter_empty_gt=False)))
    student = Config.fromfile(DET_STUDENT).model
    student.bbox_head.num_classes = 2
    teacher = copy.deepcopy(student)
    teacher.backbone = dict(type='ResNet', depth=18, num_stages=4, out_indices=(1, 2, 3),
                            norm_cfg=dict(type='BN'), style='pytorch')
    teacher.neck.in_channels = [128, 256, 512]
    teacher.neck.start_level = 0
    val_loader = loader(False)
    val_loader.pop('batch_sampler')
    return Config(dict(
        default_scope='mmdet', work_dir=str(work_dir), randomness=dict(seed=0),
        model=dict(type='mmcompact.Distiller', student=student, teacher=teacher,
                   student_recorders=dict(fpn='neck', cls=dict(module='bbox_head', index=0)),
                   teacher_recorders=dict(fpn='neck', cls=dict(module='bbox_head', index=0)),
                   distill_losses=dict(loss_pkd=dict(type='PKDLoss', student='fpn', teacher='fpn'),
                                       loss_kd_cls=dict(type='DenseHeadKDLoss', tau=2, student='cls',
                                                        teacher='cls'))),
        custom_hooks=[dict(type='mmcompact.TeacherValHook'),
                      dict(type='mmcompact.StopDistillHook', stop_iter=4)],
        train_dataloader=loader(True), val_dataloader=val_loader,
        val_evaluator=dict(type='CocoMetric', ann_file=str(data_root / 'annotations.json'), metric='bbox'),
        train_cfg=dict(type='IterBasedTrainLoop', max_iters=6, val_interval=6), val_cfg=dict(type='ValLoop'),
        optim_wrapper=dict(optimizer=dict(type='Adam', lr=1e-3)),
        default_hooks=dict(logger=dict(type='LoggerHook', interval=1),
                           checkpoint=dict(type='CheckpointHook', interval=6, by_epoch=False))))


def test_detection_distillation_through_the_runner(tmp_path):
    data_root = make_coco(tmp_path / 'coco')
    runner = Runner.from_cfg(det_config(data_root, tmp_path / 'work'))
    runner.train()
    pkd = history(runner, 'loss_pkd')
    # StopDistillHook(stop_iter=4): 4 iterations with distillation, 2 without (the teacher stops running)
    assert len(pkd) == 4 and pkd[-2:].mean() < pkd[:2].mean()
    assert len(history(runner, 'loss_kd_cls')) == 4 and len(history(runner, 'loss_cls')) == 6
    assert not runner.model.distill_enabled
    assert 'teacher/coco/bbox_mAP' in runner.message_hub.log_scalars  # TeacherValHook, before training
    assert 'val/coco/bbox_mAP' in runner.message_hub.log_scalars  # the student, through pycocotools
    assert not any('teacher' in k for k in safe_load(str(tmp_path / 'work' / 'iter_6.pth'))['state_dict'])


def test_export_cli_writes_the_student_of_a_runner_checkpoint(cls_run, tmp_path, cli):
    runner, work_dir = cls_run
    config = tmp_path / 'distill.py'
    runner.cfg.dump(str(config))
    code, _, stderr = cli('tools/deployment/export_student.py', config, work_dir / 'iter_8.pth', tmp_path / 'out',
                          '--shape', 16, 16)
    assert code == 1 and '16' in stderr
    assert not (tmp_path / 'out').exists()  # a failed export leaves nothing behind (the fold check runs first)
    code, stdout, stderr = cli('tools/deployment/export_student.py', config, work_dir / 'iter_8.pth', tmp_path / 'out',
                               '--shape', 48, 48)
    assert code == 0, stderr
    exported = safe_load(str(tmp_path / 'out' / 'student.pth'))['state_dict']
    from_hook = safe_load(str(work_dir / 'student.pth'))['state_dict']
    assert exported.keys() == from_hook.keys() and all(torch.equal(exported[k], from_hook[k]) for k in exported)
    assert (tmp_path / 'out' / 'student_deploy.pth').exists()
    code, _, stderr = cli('tools/deployment/export_student.py', config, work_dir / 'iter_8.pth', tmp_path / 'out')
    assert code == 1 and 'already exists' in stderr


def test_distillation_benchmark_cli(cli, tmp_path, cls_run):
    runner, _ = cls_run
    config = tmp_path / 'distill.py'
    runner.cfg.dump(str(config))
    code, stdout, stderr = cli('tools/analysis_tools/benchmark_distill.py', config, '--batch-size', 2, '--shape', 48,
                               48,
                               '--iters', 2, '--warmup', 1)
    assert code == 0, stderr
    for row in ('student step', 'teacher forward', 'distillation step', 'overhead beyond the teacher'):
        assert row in stdout


def test_torchrun_with_two_cpu_processes(data_root, tmp_path):
    """tools/dist_train.sh (torchrun + MMEngine's launcher) trains a distiller with 2 processes on CPU."""
    import subprocess
    import sys
    config = tmp_path / 'cfg.py'
    cls_config(data_root, tmp_path / 'work', max_iters=4).dump(str(config))
    env = dict(os.environ, PORT='29655', OMP_NUM_THREADS='1', PYTHONWARNINGS='ignore', PYTHON=sys.executable)
    result = subprocess.run(['bash', 'tools/dist_train.sh', str(config), '2'], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert (tmp_path / 'work' / 'iter_4.pth').exists() and (tmp_path / 'work' / 'student_deploy.pth').exists()
    assert not any('teacher' in k for k in safe_load(str(tmp_path / 'work' / 'iter_4.pth'))['state_dict'])
