"""Synthetic datasets in real formats, generated deterministically from a seed, and checks of dataset files
(COCO annotations, image files) before training."""
from .coco_check import (CocoFormatError, check_coco_datasets, check_coco_file, check_image_file,
                         check_image_folder)
from .synthetic import MARKS, SHAPES, class_names, detection_image, make_classification, make_coco_detection

__all__ = [
    'MARKS', 'SHAPES', 'class_names', 'detection_image', 'make_classification', 'make_coco_detection',
    'CocoFormatError', 'check_coco_datasets', 'check_coco_file', 'check_image_file', 'check_image_folder'
]
