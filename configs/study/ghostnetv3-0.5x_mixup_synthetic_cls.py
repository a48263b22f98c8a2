# The re-parameterized student trained with Mixup + CutMix (the augmentations the GhostNetV3 paper
# reports to hurt compact models): mmpretrain batch augments, soft labels into the label-smoothing loss.
_base_ = './ghostnetv3-0.5x_synthetic_cls.py'
model = dict(train_cfg=dict(augments=[dict(type='Mixup', alpha=0.8), dict(type='CutMix', alpha=1.0)]))
