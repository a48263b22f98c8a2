# Teacher of the recipe study: mmpretrain ResNet-18 (ImageNet-style stem: 2x2x2 downsampling at 64x64).
_base_ = './synthetic_cls_runtime.py'
model = dict(
    type='ImageClassifier',
    backbone=dict(type='ResNet', depth=18),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=6, in_channels=512,
              loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'), topk=(1, )))
