# The GhostNetV3 recipe's training augmentation (as in configs/distill/ghostnetv3-1.0x_resnet50_8xb128_in1k_kd.py:
# RandAugment timm_increasing, 2 ops at magnitude 9 +- 0.5, RandomErasing with probability 0.25), without the
# RandomResizedCrop (these images are already the object at full size), for the 48x48 class-family data.
# A `_base_` of configs/study/kd_families/*_randaug.py, which set `train_dataloader.dataset.pipeline` from it.
bgr_mean = [103.53, 116.28, 123.675]
bgr_std = [57.375, 57.12, 58.395]
randaug_train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='RandAugment', policies='timm_increasing', num_policies=2, total_level=10, magnitude_level=9,
         magnitude_std=0.5, hparams=dict(pad_val=[round(x) for x in bgr_mean])),
    dict(type='RandomErasing', erase_prob=0.25, mode='rand', min_area_ratio=0.02, max_area_ratio=1 / 3,
         fill_color=bgr_mean, fill_std=bgr_std),
    dict(type='PackInputs'),
]
