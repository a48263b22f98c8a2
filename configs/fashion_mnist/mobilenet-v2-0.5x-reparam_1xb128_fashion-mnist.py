# MobileNetV2-0.5x student (mmpretrain's, stock stride) with re-parameterized conv-BN pairs on 32 px
# Fashion-MNIST; `model.backbone.deploy=True` builds the plain network.
_base_ = ['./resnet18-0.25x-reparam_1xb128_fashion-mnist.py']
model = dict(
    backbone=dict(backbone=dict(_delete_=True, type='MobileNetV2', widen_factor=0.5)),
    head=dict(in_channels=1280))
