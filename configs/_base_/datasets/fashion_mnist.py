# Fashion-MNIST (60,000 train / 10,000 test 28x28 grayscale images, 10 classes) through mmpretrain's
# FashionMNIST dataset; prepare data_root with `python tools/misc/prepare_fashion_mnist.py`.
# Images are padded to 32x32 (2 px each side; the stems of ResNet / MobileNetV2 / GhostNetV3 halve
# even sizes cleanly) and copied into 3 channels (mmcompact.GrayToRGB) so stock backbones take them.
# Training: pad 4 and crop 32 (shifts of up to 2 px) + horizontal flips; the test image is centred.
dataset_type = 'FashionMNIST'
data_root = 'data/fashion_mnist'
# mean / std of the training images (0-255), the same value in each of the three channels
data_preprocessor = dict(num_classes=10, mean=[72.94] * 3, std=[90.02] * 3, to_rgb=False)
train_pipeline = [
    dict(type='RandomCrop', crop_size=32, padding=4),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='mmcompact.GrayToRGB'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='RandomCrop', crop_size=32, padding=2),  # pads 28 -> 32: the crop is the whole image
    dict(type='mmcompact.GrayToRGB'),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=128, num_workers=0, persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type=dataset_type, data_root=data_root, split='train', test_mode=False, download=False,
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=256, num_workers=0, persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=data_root, split='test', test_mode=True, download=False,
                 pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_evaluator = val_evaluator
