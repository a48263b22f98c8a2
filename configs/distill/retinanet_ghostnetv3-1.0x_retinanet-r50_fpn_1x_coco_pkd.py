# RetinaNet-GhostNetV3-1.0x-FPN student distilled from RetinaNet-R50-FPN on COCO (data/coco): PKD on the
# five FPN levels (robust to feature-scale differences) plus logit KD on the classification maps of the
# shared anchor layout. Put the teacher's mmdet checkpoint at the path below. The student is exported at
# the end (student.pth loads into the plain student config, student_deploy.pth into its _deploy config).
_base_ = '{{fileDirname}}/../detection/retinanet_ghostnetv3-1.0x_fpn_1x_coco.py'

model = dict(
    _delete_=True,
    type='mmcompact.Distiller',
    student='{{fileDirname}}/../detection/retinanet_ghostnetv3-1.0x_fpn_1x_coco.py',
    teacher='mmdet::retinanet/retinanet_r50_fpn_1x_coco.py',
    teacher_checkpoint='checkpoints/retinanet_r50_fpn_1x_coco.pth',
    student_recorders=dict(fpn='neck', cls=dict(module='bbox_head', index=0)),
    teacher_recorders=dict(fpn='neck', cls=dict(module='bbox_head', index=0)),
    distill_losses=dict(
        loss_pkd_fpn=dict(type='PKDLoss', loss_weight=6.0, student='fpn', teacher='fpn'),
        loss_kd_cls=dict(type='DenseHeadKDLoss', tau=1.0, loss_weight=1.0, student='cls', teacher='cls')))
custom_hooks = [dict(type='mmcompact.StudentExportHook', check_shape=(1, 3, 320, 320)),
                dict(type='mmcompact.RandomStateHook'),
                dict(type='mmcompact.NonFiniteLossHook', action='skip', max_skips=100)]
optim_wrapper = dict(type='mmcompact.NonFiniteGuardOptimWrapper')  # never applies a NaN/Inf step
