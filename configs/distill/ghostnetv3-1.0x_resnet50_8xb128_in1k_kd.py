# GhostNetV3 1.0x student distilled from a ResNet-50 teacher on ImageNet-1k (data/imagenet) with the
# GhostNetV3 recipe: re-parameterized student, logit KD, SGD + cosine LR with warm-up, label smoothing 0.1,
# EMA, RandAugment + RandomErasing, no Mixup/CutMix (paper: arXiv 2404.11202, 600 epochs; 300 here).
# Put the teacher's mmpretrain checkpoint at the path below (e.g. resnet50_8xb32_in1k from the mmpretrain
# model zoo). At the end of training the student is exported (student.pth, student_deploy.pth).
_base_ = [
    'mmpretrain::_base_/datasets/imagenet_bs128_mbv3.py',
    '../_base_/schedules/ghostnetv3_sgd_cosine_300e.py',
    'mmpretrain::_base_/default_runtime.py',
    '../_base_/pipelines/recipe_randaug.py',
]
custom_imports = dict(imports=['mmcompact'], allow_failed_imports=False)

model = dict(
    type='mmcompact.Distiller',
    student='{{fileDirname}}/../ghostnetv3/ghostnetv3-1.0x_8xb128_in1k.py',
    teacher='mmpretrain::resnet/resnet50_8xb32_in1k.py',
    teacher_checkpoint='checkpoints/resnet50_8xb32_in1k.pth',
    student_recorders=dict(logits='head.fc'),
    teacher_recorders=dict(logits='head.fc'),
    distill_losses=dict(
        loss_kd=dict(type='KLDivergence', tau=1.0, loss_weight=1.0, student='logits', teacher='logits')))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=224, backend='pillow'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    {{_base_.recipe_randaugment}},
    {{_base_.recipe_random_erasing}},
    dict(type='PackInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))

custom_hooks = [
    # BatchNorm statistics averaged with the weights, as timm's ModelEmaV2 does (MMEngine's default keeps the
    # live model's statistics beside the averaged weights)
    dict(type='EMAHook', momentum=1e-4, update_buffers=True, priority='ABOVE_NORMAL'),
    dict(type='mmcompact.StudentExportHook'),
    dict(type='mmcompact.RandomStateHook'),  # --resume draws the same augmentations as an unbroken run
    dict(type='mmcompact.NonFiniteLossHook', action='skip', max_skips=100),
]
optim_wrapper = dict(type='mmcompact.NonFiniteGuardOptimWrapper')  # never applies a NaN/Inf step
