# Deploy form of mobilenet-v2-reparam_8xb32_in1k.py: exactly mmpretrain's plain MobileNetV2.
_base_ = './mobilenet-v2-reparam_8xb32_in1k.py'
model = dict(backbone=dict(deploy=True))
