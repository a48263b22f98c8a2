# FCOS-FPN (GN head) on COCO (data/coco) with a GhostNetV3 1.0x backbone (training form; fold with
# tools/deployment/fold.py, deploy variant: set model.backbone.deploy=True).
_base_ = 'mmdet::fcos/fcos_r50-caffe_fpn_gn-head_1x_coco.py'
custom_imports = dict(imports=['mmcompact'], allow_failed_imports=False)
model = dict(
    data_preprocessor=dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], bgr_to_rgb=True),
    backbone=dict(_delete_=True, type='mmcompact.GhostNetV3', widen_factor=1.0, out_indices=(2, 4, 6, 9),
                  norm_eval=False, deploy=False, init_cfg=None),
    neck=dict(in_channels=[24, 40, 112, 960], start_level=1))
optim_wrapper = dict(paramwise_cfg=dict(norm_decay_mult=0.0))
