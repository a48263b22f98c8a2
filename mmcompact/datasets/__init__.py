"""Synthetic datasets in real formats, generated deterministically from a seed, and checks of COCO files."""
from .coco_check import CocoFormatError, check_coco_datasets, check_coco_file
from .synthetic import SHAPES, detection_image, make_classification, make_coco_detection

__all__ = ['SHAPES', 'detection_image', 'make_classification', 'make_coco_detection', 'CocoFormatError',
           'check_coco_datasets', 'check_coco_file']
