"""Synthetic datasets in real formats, generated deterministically from a seed, checks of dataset files
(COCO annotations, image files) before training, Fashion-MNIST preparation and the transforms it needs."""
from . import transforms  # noqa: F401  (registers GrayToRGB)
from .coco_check import CocoFormatError, check_coco_datasets, check_coco_file, check_image_file, check_image_folder
from .fashion_mnist import prepare_fashion_mnist
from .synthetic import MARKS, SHAPES, class_names, detection_image, make_classification, make_coco_detection

__all__ = [
    'MARKS', 'SHAPES', 'class_names', 'detection_image', 'make_classification', 'make_coco_detection',
    'CocoFormatError', 'check_coco_datasets', 'check_coco_file', 'check_image_file', 'check_image_folder',
    'prepare_fashion_mnist'
]
