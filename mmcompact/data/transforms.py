"""Data pipeline transforms the OpenMMLab stack lacks for small grayscale datasets."""
import numpy as np
from mmcv.transforms import BaseTransform

from ..registry import TRANSFORMS


@TRANSFORMS.register_module()
class GrayToRGB(BaseTransform):
    """(H, W) or (H, W, 1) uint8 ``results['img']`` -> (H, W, 3), the gray value in every channel, so
    networks built for colour images (3-channel stems) take grayscale data such as Fashion-MNIST unchanged.
    A 3-channel image passes through; any other channel count is an error naming the shape."""

    def transform(self, results: dict) -> dict:
        img = results['img']
        if img.ndim == 3 and img.shape[2] == 3:
            return results
        if img.ndim == 2 or (img.ndim == 3 and img.shape[2] == 1):
            results['img'] = np.repeat(img.reshape(img.shape[0], img.shape[1], 1), 3, axis=2)
            results['img_shape'] = results['img'].shape[:2]
            return results
        raise ValueError(f'GrayToRGB takes an (H, W) or (H, W, 1) image, got shape {img.shape}')
