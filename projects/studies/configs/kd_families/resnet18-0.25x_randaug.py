# The re-param ResNet-18-0.25x student trained with the GhostNetV3 recipe's augmentation
# (RandAugment + RandomErasing, configs/_base_/pipelines/recipe_randaug.py) instead of flips alone.
_base_ = ['./resnet18-0.25x.py', '../../../../configs/_base_/pipelines/recipe_randaug.py']
train_dataloader = dict(dataset=dict(pipeline=[
    dict(type='LoadImageFromFile'), dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    {{_base_.recipe_randaugment}}, {{_base_.recipe_random_erasing}}, dict(type='PackInputs')]))
