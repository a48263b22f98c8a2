"""Synthetic datasets in real formats, generated deterministically from a seed."""
from .synthetic import SHAPES, detection_image, make_classification, make_coco_detection

__all__ = ['SHAPES', 'detection_image', 'make_classification', 'make_coco_detection']
