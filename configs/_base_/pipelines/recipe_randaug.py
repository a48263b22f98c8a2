# The GhostNetV3 recipe's training augmentation, two transforms to put between the geometric ones and
# PackInputs: RandAugment (timm_increasing, 2 ops at magnitude 9 +- 0.5) and RandomErasing (probability 0.25).
# A `_base_` of configs/distill/ghostnetv3-1.0x_resnet50_8xb128_in1k_kd.py (after RandomResizedCrop + flip)
# and of the synthetic studies' *_randaug.py configs in projects/studies/ (after a flip only: those images are
# the object at full size).
recipe_bgr_mean = [103.53, 116.28, 123.675]
recipe_bgr_std = [57.375, 57.12, 58.395]
recipe_randaugment = dict(type='RandAugment', policies='timm_increasing', num_policies=2, total_level=10,
                          magnitude_level=9, magnitude_std=0.5,
                          hparams=dict(pad_val=[round(x) for x in recipe_bgr_mean]))
recipe_random_erasing = dict(type='RandomErasing', erase_prob=0.25, mode='rand', min_area_ratio=0.02,
                             max_area_ratio=1 / 3, fill_color=recipe_bgr_mean, fill_std=recipe_bgr_std)
