# Quick-start distillation: the re-parameterized GhostNetV3 0.5x RetinaNet student learns from the
# quarter-width RetinaNet-R18 teacher of `make demo` (PKD on the FPN levels + logit KD on the classification
# maps), EMA on. At the end the student is exported: student.pth (loads into
# student_retinanet_ghostnetv3-0.5x_synthetic.py) and student_deploy.pth (the same with deploy=True).
_base_ = ['./synthetic_det_runtime.py']
custom_imports = dict(imports=['mmcompact'], allow_failed_imports=False)
model = dict(
    type='mmcompact.Distiller',
    student='{{fileDirname}}/student_retinanet_ghostnetv3-0.5x_synthetic.py',
    teacher='{{fileDirname}}/teacher_retinanet_r18-0.25x_fpn_synthetic.py',
    # the trained teacher: --cfg-options model.teacher_checkpoint=<teacher work dir>/iter_1200.pth
    teacher_checkpoint=None,
    student_recorders=dict(fpn='neck', cls=dict(module='bbox_head', index=0)),
    teacher_recorders=dict(fpn='neck', cls=dict(module='bbox_head', index=0)),
    distill_losses=dict(
        loss_pkd_fpn=dict(type='PKDLoss', loss_weight=2.0, student='fpn', teacher='fpn'),
        loss_kd_cls=dict(type='DenseHeadKDLoss', tau=1.0, loss_weight=1.0, student='cls', teacher='cls')))
custom_hooks = [
    dict(type='EMAHook', momentum=0.01, priority='ABOVE_NORMAL'),
    dict(type='mmcompact.TeacherValHook'),
    dict(type='mmcompact.StudentExportHook', check_shape=(1, 3, 160, 160)),
]
