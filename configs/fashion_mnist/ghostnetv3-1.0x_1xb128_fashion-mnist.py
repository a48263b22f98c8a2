# GhostNetV3-1.0x student for 32 px Fashion-MNIST (stem stride 1, as ghostnetv3-0.5x_1xb128_fashion-mnist.py).
_base_ = ['./ghostnetv3-0.5x_1xb128_fashion-mnist.py']
model = dict(backbone=dict(widen_factor=1.0), head=dict(in_channels=960))
