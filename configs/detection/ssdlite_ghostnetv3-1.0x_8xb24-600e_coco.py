# SSDLite 320x320 on COCO (data/coco) with a GhostNetV3 1.0x backbone in place of MobileNetV2 (stride-16
# stage 6 with 112 channels and stride-32 stage 9 with 960 channels feed the SSD neck).
_base_ = 'mmdet::ssd/ssdlite_mobilenetv2-scratch_8xb24-600e_coco.py'
custom_imports = dict(imports=['mmcompact'], allow_failed_imports=False)
model = dict(
    backbone=dict(_delete_=True, type='mmcompact.GhostNetV3', widen_factor=1.0, out_indices=(6, 9),
                  norm_cfg=dict(type='BN', eps=0.001, momentum=0.03), deploy=False, init_cfg=None),
    neck=dict(in_channels=(112, 960), out_channels=(112, 960, 512, 256, 256, 128)),
    bbox_head=dict(in_channels=(112, 960, 512, 256, 256, 128)))
