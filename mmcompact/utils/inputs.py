"""Deterministic example inputs for equivalence checks, exports and benchmarks."""
from typing import Sequence

import torch


def random_inputs(shape: Sequence[int] = (2, 3, 224, 224), seed: int = 0) -> torch.Tensor:
    """A deterministic random batch of images (N, 3, H, W), standard normal, for equivalence checks."""
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def detection_inputs(batch_size: int, shape: Sequence[int], seed: int = 0):
    """Random images (N, 3, H, W) in [0, 255] and the DetDataSamples mmdet's ``predict`` needs."""
    from mmdet.structures import DetDataSample
    h, w = shape
    images = torch.rand(batch_size, 3, h, w, generator=torch.Generator().manual_seed(seed)) * 255
    samples = []
    for _ in range(batch_size):
        sample = DetDataSample()
        sample.set_metainfo(dict(img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w),
                                 batch_input_shape=(h, w), scale_factor=(1.0, 1.0)))
        samples.append(sample)
    return images, samples
