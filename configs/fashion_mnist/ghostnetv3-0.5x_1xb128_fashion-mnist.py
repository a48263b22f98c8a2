# GhostNetV3-0.5x student for 32 px Fashion-MNIST: stem stride 1 (the official stride 2 leaves 1x1 maps at
# stride 32, which its DFC attention cannot pool, and discards most of a 28 px image), so the output stride
# is 16. Trains re-parameterized (3 branches + scale + identity), folds to the plain GhostNet-style network;
# `model.backbone.num_branches=1 model.backbone.extra_branches=False` trains that network directly.
_base_ = ['../_base_/datasets/fashion_mnist.py', '../_base_/schedules/fashion_mnist_adamw_cosine.py']
model = dict(
    type='ImageClassifier',
    backbone=dict(type='mmcompact.GhostNetV3', widen_factor=0.5, stem_stride=1),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=10, in_channels=480,
              loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'), topk=(1, )))
