# Detection transfer of a learned structure (tools/structure_transfer_study.py): RetinaNet-FPN on the easy
# synthetic COCO data with a StructuredBackbone of the structure study's ResNetV1c-18 family. As written, the
# backbone is the family at full width (no block replaced); the study writes one config per structure with its
# blocks, the channels of its four stages (neck.in_channels) and the classification checkpoint it starts from
# (the backbone's init_cfg). The FPN and head are the teacher's (configs/demo/teacher_...), so the teacher's
# FPN levels and classification maps can be distilled.
_base_ = ['../../../../configs/demo/synthetic_det_runtime.py', 'mmdet::_base_/models/retinanet_r50_fpn.py']
custom_imports = dict(imports=['mmcompact'], allow_failed_imports=False)
model = dict(
    backbone=dict(_delete_=True, type='mmcompact.StructuredBackbone', blocks=dict(),
                  backbone=dict(type='mmpretrain.ResNetV1c', depth=18, out_indices=(0, 1, 2, 3))),
    neck=dict(in_channels=[64, 128, 256, 512], out_channels=64, start_level=1, num_outs=4),
    bbox_head=dict(num_classes=3, in_channels=64, feat_channels=64, stacked_convs=2,
                   anchor_generator=dict(strides=[8, 16, 32, 64])),
    test_cfg=dict(score_thr=0.05, max_per_img=50))
