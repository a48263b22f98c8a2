# RetinaNet-FPN on COCO (data/coco) with a GhostNetV3 1.0x backbone (training form).
# Stages 2/4/6/9 give strides 4/8/16/32 with 24/40/112/960 channels; the FPN starts at stride 8 as in
# mmdet's RetinaNet-R50. Put a converted ImageNet checkpoint (tools/model_converters/convert_ghostnetv3.py) in
# init_cfg.checkpoint to start from pretrained weights.
_base_ = 'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['mmcompact'], allow_failed_imports=False)
model = dict(
    backbone=dict(
        _delete_=True,
        type='mmcompact.GhostNetV3',
        widen_factor=1.0,
        out_indices=(2, 4, 6, 9),
        frozen_stages=-1,
        norm_eval=False,
        deploy=False,
        init_cfg=None),
    neck=dict(in_channels=[24, 40, 112, 960], start_level=1, add_extra_convs='on_input', num_outs=5))
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=4e-5),
    paramwise_cfg=dict(norm_decay_mult=0.0))
