# The Fashion-MNIST training pipeline with RandomErasing after the flips (the WRN-28-10 + random erasing entry
# of the dataset's benchmark list uses it), filled with the dataset's mean and std. A pipeline only (no dataset
# keys), so a config can take it as a second base and use {{_base_.fashion_mnist_erasing_pipeline}}.
fashion_mnist_erasing_pipeline = [
    dict(type='RandomCrop', crop_size=32, padding=4),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='mmcompact.GrayToRGB'),
    dict(type='RandomErasing', erase_prob=0.25, mode='rand', min_area_ratio=0.02, max_area_ratio=1 / 3,
         fill_color=[72.94] * 3, fill_std=[90.02] * 3),
    dict(type='PackInputs'),
]
