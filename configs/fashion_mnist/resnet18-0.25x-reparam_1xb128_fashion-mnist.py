# Compact student: ResNet-18 at a quarter width (stem and base 16 channels) whose conv-BN pairs train
# re-parameterized (mmcompact.Reparameterized: 3 kxk branches + 1x1 scale + BN identity) and fold into the
# plain network: 2.77M deploy MACs at 32 px (1/13 of the teacher). `model.backbone.deploy=True` builds the
# plain network itself (the "plain" variant of the recipe study).
_base_ = ['../_base_/datasets/fashion_mnist.py', '../_base_/schedules/fashion_mnist_adamw_cosine.py']
model = dict(
    type='ImageClassifier',
    backbone=dict(type='mmcompact.Reparameterized', input_shape=(1, 3, 32, 32),
                  backbone=dict(type='ResNet', depth=18, stem_channels=16, base_channels=16),
                  num_branches=3, scale_branch=True, identity_branch=True),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=10, in_channels=128,
              loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'), topk=(1, )))
