# Teacher of the structure study on Fashion-MNIST (structure_study.py --family resnet18c-fmnist): mmpretrain
# ResNetV1c-18 (deep stem: three 3x3 convs, one module the search can narrow) on 32 px padded Fashion-MNIST,
# with the schedule of the recipe study's teacher (20 epochs, AdamW + cosine, label smoothing 0.1).
_base_ = ['../../../configs/fashion_mnist/resnet18_1xb128_fashion-mnist.py']
model = dict(backbone=dict(type='ResNetV1c'))
