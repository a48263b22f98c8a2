# RetinaNet-FPN on COCO (data/coco) with mmdet's MobileNetV2 backbone trained re-parameterized; folds back
# into the plain MobileNetV2 (tools/deployment/fold.py), so the deploy checkpoint loads into a plain mmdet config.
_base_ = 'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['mmcompact'], allow_failed_imports=False)
model = dict(
    backbone=dict(
        _delete_=True,
        type='mmcompact.Reparameterized',
        backbone=dict(type='MobileNetV2', out_indices=(2, 4, 7), norm_eval=False),
        deploy=False),
    neck=dict(in_channels=[32, 96, 1280], start_level=0, add_extra_convs='on_input', num_outs=5))
optim_wrapper = dict(paramwise_cfg=dict(norm_decay_mult=0.0))
