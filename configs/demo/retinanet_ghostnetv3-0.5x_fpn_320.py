# A small RetinaNet-FPN with a GhostNetV3 0.5x backbone (320x320, 8 classes) that builds, folds and counts
# on a 2-core CPU in seconds; the tests use it. Same structure as the COCO config.
_base_ = '../detection/retinanet_ghostnetv3-1.0x_fpn_1x_coco.py'
model = dict(
    backbone=dict(widen_factor=0.5),
    neck=dict(in_channels=[12, 20, 56, 480], out_channels=64),
    bbox_head=dict(num_classes=8, in_channels=64, feat_channels=64, stacked_convs=2))
# Random weights score every anchor near the 0.01 prior: keep all top-100 boxes so that the detections
# of the training form and the folded form can be compared one by one.
model.update(test_cfg=dict(score_thr=0.0, max_per_img=100))
