# Heterogeneous pair: RetinaNet-GhostNetV3-1.0x student, Faster R-CNN-R50-FPN teacher (data/coco). Only
# the FPN features are shared (both have five 256-channel levels at strides 8-128 vs 4-64: the student's
# P3-P7 are paired with the teacher's P2-P6 after resizing), with PKD, which normalises each channel and so
# tolerates the two detectors' different feature magnitudes. The teacher runs extract_feat only.
_base_ = './retinanet_ghostnetv3-1.0x_retinanet-r50_fpn_1x_coco_pkd.py'

model = dict(
    teacher='mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py',
    teacher_checkpoint='checkpoints/faster-rcnn_r50_fpn_1x_coco.pth',
    student_recorders=dict(_delete_=True, fpn='neck'),
    teacher_recorders=dict(_delete_=True, fpn='neck'),
    connectors=dict(fpn_resize=dict(type='SpatialConnector', spatial='resize')),
    distill_losses=dict(
        _delete_=True,
        loss_pkd_fpn=dict(type='PKDLoss', loss_weight=6.0, student='fpn', teacher='fpn',
                          connector='fpn_resize')))
