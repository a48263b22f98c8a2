# KD study on class families, a fast-learning student: ResNet-18 at a quarter width (base and stem 16
# channels) with re-parameterized conv-BN pairs (mmcompact.Reparameterized: 3 branches + scale + identity);
# `model.backbone.deploy=True` builds the plain network, the deploy form of every variant.
_base_ = ['../resnet18_synthetic_cls.py']
num_classes = 18
data_preprocessor = dict(num_classes=num_classes)
model = dict(
    backbone=dict(_delete_=True, type='mmcompact.Reparameterized', input_shape=(1, 3, 48, 48),
                  backbone=dict(type='ResNet', depth=18, stem_channels=16, base_channels=16),
                  num_branches=3, scale_branch=True, identity_branch=True),
    head=dict(num_classes=num_classes, in_channels=128))
