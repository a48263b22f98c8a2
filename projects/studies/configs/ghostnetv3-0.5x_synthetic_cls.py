# Student of the recipe study: GhostNetV3 0.5x, re-parameterized (num_branches=3 with scale/identity
# branches); the 'plain' variant sets model.backbone.num_branches=1 and extra_branches=False (same deploy
# form, same deploy FLOPs).
_base_ = './synthetic_cls_runtime.py'
custom_imports = dict(imports=['mmcompact'], allow_failed_imports=False)
model = dict(
    type='ImageClassifier',
    backbone=dict(type='mmcompact.GhostNetV3', widen_factor=0.5, num_branches=3, extra_branches=True),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='mmcompact.GhostNetV3ClsHead', num_classes=6, in_channels=480, hidden_channels=256,
              loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'), topk=(1, )))
