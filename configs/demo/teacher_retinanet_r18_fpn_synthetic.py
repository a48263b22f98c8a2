# Quick-start teacher: RetinaNet-ResNet18-FPN trained from scratch on the synthetic shapes (CPU-sized).
_base_ = ['./synthetic_det_runtime.py', 'mmdet::_base_/models/retinanet_r50_fpn.py']
model = dict(
    backbone=dict(depth=18, norm_eval=False, init_cfg=None, frozen_stages=-1),
    neck=dict(in_channels=[64, 128, 256, 512], out_channels=64, start_level=1, num_outs=4),
    bbox_head=dict(num_classes=3, in_channels=64, feat_channels=64, stacked_convs=2,
                   anchor_generator=dict(strides=[8, 16, 32, 64])),
    test_cfg=dict(score_thr=0.05, max_per_img=50))
