# Deploy form of retinanet_ghostnetv3-1.0x_fpn_1x_coco.py (loads checkpoints written by tools/deployment/fold.py).
_base_ = './retinanet_ghostnetv3-1.0x_fpn_1x_coco.py'
model = dict(backbone=dict(deploy=True))
