# Faster R-CNN-FPN on COCO (data/coco) with a GhostNetV3 1.0x backbone; FPN from stride 4 as for ResNets.
_base_ = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['mmcompact'], allow_failed_imports=False)
model = dict(
    backbone=dict(_delete_=True, type='mmcompact.GhostNetV3', widen_factor=1.0, out_indices=(2, 4, 6, 9),
                  norm_eval=False, deploy=False, init_cfg=None),
    neck=dict(in_channels=[24, 40, 112, 960]))
optim_wrapper = dict(paramwise_cfg=dict(norm_decay_mult=0.0))
