# GhostNetV3 1.0x on ImageNet-1k (data/imagenet, mmpretrain layout): training form.
# Paper figures: 77.1% top-1 (600 epochs, re-param + KD + EMA), 6.1M params, 167M MACs (deploy form).
# The full recipe (KD teacher, EMA, RandAugment, RandomErasing) comes with the recipe configs; this config
# is the plain supervised baseline on the same architecture.
_base_ = [
    '../_base_/models/ghostnetv3-1.0x.py',
    'mmpretrain::_base_/datasets/imagenet_bs128_mbv3.py',
    '../_base_/schedules/ghostnetv3_sgd_cosine_300e.py',
    'mmpretrain::_base_/default_runtime.py',
]
