# Teacher of the Fashion-MNIST studies: mmpretrain ResNet-18 (full width, ImageNet-style stem) on 32 px
# padded Fashion-MNIST; 37.0 M deploy MACs. 20 epochs, label smoothing 0.1.
_base_ = ['../_base_/datasets/fashion_mnist.py', '../_base_/schedules/fashion_mnist_adamw_cosine.py']
max_epochs = 20
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=True, begin=0, end=1, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=1, T_max=max_epochs - 1, eta_min=1e-5,
         convert_to_iter_based=True),
]
model = dict(
    type='ImageClassifier',
    backbone=dict(type='ResNet', depth=18),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=10, in_channels=512,
              loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'), topk=(1, )))
