# GhostNetV3 1.3x on ImageNet-1k: training form (see ghostnetv3-1.0x_8xb128_in1k.py).
_base_ = './ghostnetv3-1.0x_8xb128_in1k.py'
model = dict(backbone=dict(widen_factor=1.3), head=dict(in_channels=1248))
