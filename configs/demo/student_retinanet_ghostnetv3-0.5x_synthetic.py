# Quick-start student: RetinaNet-FPN with a re-parameterized GhostNetV3 0.5x backbone, same head layout as
# the teacher (so head logits can be distilled). deploy=True (or tools/deployment/fold.py) gives its deploy form.
_base_ = ['./synthetic_det_runtime.py', 'mmdet::_base_/models/retinanet_r50_fpn.py']
custom_imports = dict(imports=['mmcompact'], allow_failed_imports=False)
model = dict(
    backbone=dict(_delete_=True, type='mmcompact.GhostNetV3', widen_factor=0.5, out_indices=(2, 4, 6, 9),
                  deploy=False),
    neck=dict(in_channels=[12, 20, 56, 480], out_channels=64, start_level=1, num_outs=4),
    bbox_head=dict(num_classes=3, in_channels=64, feat_channels=64, stacked_convs=2,
                   anchor_generator=dict(strides=[8, 16, 32, 64])),
    test_cfg=dict(score_thr=0.05, max_per_img=50))
