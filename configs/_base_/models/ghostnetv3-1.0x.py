# GhostNetV3 1.0x ImageNet classifier (mmpretrain ImageClassifier, training form with re-param branches).
custom_imports = dict(imports=['mmcompact'], allow_failed_imports=False)
model = dict(
    type='ImageClassifier',
    backbone=dict(type='mmcompact.GhostNetV3', widen_factor=1.0, out_indices=(9, ), deploy=False),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='mmcompact.GhostNetV3ClsHead',
        num_classes=1000,
        in_channels=960,
        hidden_channels=1280,
        dropout_ratio=0.2,
        loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
        topk=(1, 5)))
