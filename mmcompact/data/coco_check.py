"""Checks of COCO-format annotation files before training: a malformed file gets one error that names the
file, the entry (``annotations[3] (id 17)``), the key, the value and the fix, instead of an unpacking error
or a silently empty dataset from inside mmdet/pycocotools."""
import json
import math
import os
from typing import Any, Iterable, List, Optional, Sequence

from mmengine.config import Config


class CocoFormatError(ValueError):
    """A COCO annotation file that mmdet's CocoDataset / CocoMetric would misread or fail on."""


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _entries(data: dict, key: str, path: str) -> list:
    if key not in data:
        raise CocoFormatError(f"{path}: no '{key}' list at the top level (COCO files have 'images', "
                              "'annotations' and 'categories')")
    if not isinstance(data[key], list):
        raise CocoFormatError(f"{path}: '{key}' must be a list, got {type(data[key]).__name__}")
    for index, entry in enumerate(data[key]):
        if not isinstance(entry, dict):
            raise CocoFormatError(f'{path}: {key}[{index}] must be an object, got {entry!r:.60}')
    return data[key]


def _unique_int_ids(entries: list, key: str, path: str) -> set:
    ids = set()
    for index, entry in enumerate(entries):
        if not _is_int(entry.get('id')):
            raise CocoFormatError(f"{path}: {key}[{index}] needs an integer 'id', got {entry.get('id')!r:.60}")
        if entry['id'] in ids:
            raise CocoFormatError(f"{path}: {key}[{index}] repeats id {entry['id']}: ids must be unique")
        ids.add(entry['id'])
    return ids


def _check_segmentation(segmentation: Any, where: str) -> None:
    if isinstance(segmentation, dict):  # RLE
        if 'counts' not in segmentation or 'size' not in segmentation:
            raise CocoFormatError(f"{where}: an RLE 'segmentation' needs 'counts' and 'size'")
        return
    if not isinstance(segmentation, list):
        raise CocoFormatError(f"{where}: 'segmentation' must be a list of polygons or an RLE object, got "
                              f'{segmentation!r:.60}')
    for polygon in segmentation:
        if (not isinstance(polygon, list) or len(polygon) < 6 or len(polygon) % 2
                or not all(_is_number(v) for v in polygon)):
            raise CocoFormatError(f"{where}: each polygon in 'segmentation' must be a flat list [x1, y1, x2, "
                                  f'y2, ...] of at least 3 finite points, got {polygon!r:.60}')


IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.ppm', '.bmp', '.pgm', '.tif', '.tiff', '.webp')


def check_image_file(path: str, where: str) -> None:
    """``path`` exists and its header decodes as an image (PIL; the pixels are not read)."""
    from PIL import Image, UnidentifiedImageError
    if not os.path.isfile(path):
        raise CocoFormatError(f'{where}: image file {path!r} does not exist (check data_root and data_prefix)')
    try:
        with Image.open(path) as image:
            image.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise CocoFormatError(f'{where}: {path!r} is not a readable image ({type(err).__name__}): replace '
                              'or remove the file') from None


def check_coco_file(path: str, classes: Optional[Sequence[str]] = None, image_dir: Optional[str] = None) -> dict:
    """Validate the COCO detection annotation file ``path``; returns the parsed JSON.

    Checks: valid JSON object with 'images', 'annotations', 'categories' lists of objects; unique integer
    ids; images with a non-empty ``file_name`` and positive integer ``width``/``height``; annotations whose
    ``image_id``/``category_id`` exist, with ``bbox`` = 4 finite numbers ``[x, y, w, h]`` (w, h >= 0), a
    non-negative ``area`` (required: mmdet and COCO evaluation read it), ``iscrowd`` 0/1 and well-formed
    polygons/RLE when present; at least one annotation (mmdet fails on an empty list); ``classes`` (the
    config's ``metainfo.classes``) all among the category names; with ``image_dir``, every image file exists
    and is an image. Raises CocoFormatError otherwise.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f'COCO annotation file {path!r} does not exist (check data_root and ann_file)')
    try:
        with open(path, encoding='utf-8') as f:
            data = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CocoFormatError(f'{path}: not valid JSON ({err})') from None
    if not isinstance(data, dict):
        raise CocoFormatError(f'{path}: the top level must be a JSON object, got {type(data).__name__}')
    images = _entries(data, 'images', path)
    annotations = _entries(data, 'annotations', path)
    categories = _entries(data, 'categories', path)
    if not images:
        raise CocoFormatError(f"{path}: 'images' is empty: the dataset has nothing to train or evaluate on")
    image_ids = _unique_int_ids(images, 'images', path)
    category_ids = _unique_int_ids(categories, 'categories', path)
    for index, image in enumerate(images):
        where = f"{path}: images[{index}] (id {image['id']})"
        if not isinstance(image.get('file_name'), str) or not image['file_name']:
            raise CocoFormatError(f"{where}: needs a non-empty 'file_name', got {image.get('file_name')!r:.60}")
        for key in ('width', 'height'):
            if not _is_int(image.get(key)) or image[key] <= 0:
                raise CocoFormatError(f"{where}: '{key}' must be a positive integer, got {image.get(key)!r:.60}")
    names = []
    for index, category in enumerate(categories):
        if not isinstance(category.get('name'), str):
            raise CocoFormatError(f"{path}: categories[{index}] (id {category['id']}) needs a string 'name'")
        if category['name'] in names:
            raise CocoFormatError(f"{path}: categories[{index}] repeats the name {category['name']!r}: "
                                  'category names must be unique (mmdet maps classes to categories by name)')
        names.append(category['name'])
    if not annotations:
        raise CocoFormatError(f"{path}: 'annotations' is empty: there is no object to learn or evaluate "
                              '(mmdet would fail with "need at least one array to concatenate")')
    _unique_int_ids(annotations, 'annotations', path)
    for index, ann in enumerate(annotations):
        where = f"{path}: annotations[{index}] (id {ann['id']})"
        if not _is_int(ann.get('image_id')) or ann['image_id'] not in image_ids:
            raise CocoFormatError(f"{where}: 'image_id' {ann.get('image_id')!r:.60} is not the id of any image")
        if not _is_int(ann.get('category_id')) or ann['category_id'] not in category_ids:
            raise CocoFormatError(f"{where}: 'category_id' {ann.get('category_id')!r:.60} is not the id of any "
                                  f'category (ids: {sorted(category_ids)})')
        bbox = ann.get('bbox')
        if not isinstance(bbox, list) or len(bbox) != 4 or not all(_is_number(v) for v in bbox):
            raise CocoFormatError(f"{where}: 'bbox' must be 4 finite numbers [x, y, width, height], got "
                                  f'{bbox!r:.60}')
        if bbox[2] < 0 or bbox[3] < 0:
            raise CocoFormatError(f"{where}: 'bbox' {bbox} has a negative width or height: COCO boxes are "
                                  '[x, y, width, height], not [x1, y1, x2, y2]')
        if 'area' not in ann:  # mmdet's CocoDataset and COCO evaluation both read it
            raise CocoFormatError(f"{where}: 'area' is missing: add the object's area in pixels (its mask's, "
                                  'or width * height of its bbox)')
        if not _is_number(ann['area']) or ann['area'] < 0:
            raise CocoFormatError(f"{where}: 'area' must be a non-negative number, got {ann['area']!r:.60}")
        if ann.get('iscrowd', 0) not in (0, 1) or isinstance(ann.get('iscrowd', 0), bool):
            raise CocoFormatError(f"{where}: 'iscrowd' must be 0 or 1, got {ann['iscrowd']!r:.60}")
        if 'segmentation' in ann:
            _check_segmentation(ann['segmentation'], where)
    if image_dir is not None:
        for index, image in enumerate(images):
            check_image_file(os.path.join(image_dir, image['file_name']),
                             f"{path}: images[{index}] (id {image['id']})")
    missing = [name for name in (classes or ()) if name not in names]
    if missing:
        raise CocoFormatError(f'{path}: metainfo classes {missing} are not category names of this file '
                              f'({names}): fix metainfo.classes in the config or the categories')
    return data


def _datasets(node: Any, where: str, wanted) -> Iterable:
    """(config path, dataset dict) of every dataset config under ``node`` (through dataset wrappers) for
    which ``wanted(dataset)`` is true."""
    if isinstance(node, dict):
        if wanted(node):
            yield where, node
        for key in ('dataset', 'datasets'):
            if key in node:
                yield from _datasets(node[key], f'{where}.{key}', wanted)
    elif isinstance(node, (list, tuple)):
        for index, item in enumerate(node):
            yield from _datasets(item, f'{where}[{index}]', wanted)


def _is_coco(dataset: dict) -> bool:
    return str(dataset.get('type', '')).split('.')[-1] == 'CocoDataset'


def _is_image_folder(dataset: dict) -> bool:
    """mmpretrain's CustomDataset in folder layout (classes from sub-folders, no annotation file)."""
    return str(dataset.get('type', '')).split('.')[-1] == 'CustomDataset' and not dataset.get('ann_file') \
        and isinstance(dataset.get('data_prefix', ''), str)


def _check_at(key: str, path: str, classes=None, image_dir=None) -> None:
    try:
        check_coco_file(path, classes, image_dir)
    except (CocoFormatError, FileNotFoundError) as err:
        raise type(err)(f'{key}: {err}') from None


def check_coco_datasets(cfg: Config, splits: Sequence[str] = ('train', 'val', 'test')) -> List[str]:
    """Check the annotation file of every CocoDataset in the ``splits`` dataloaders of ``cfg`` (as
    MMEngine resolves it: ``ann_file`` joined to ``data_root`` when relative) and of every CocoMetric
    evaluator. Returns the files checked; raises CocoFormatError / FileNotFoundError naming the config key."""
    checked = []
    for split in splits:
        loader = cfg.get(f'{split}_dataloader')
        for where, dataset in _datasets(loader.get('dataset') if loader else None,
                                        f'{split}_dataloader.dataset', _is_coco):
            path = os.path.join(dataset.get('data_root') or '', dataset.get('ann_file', ''))
            prefix = dataset.get('data_prefix') or {}
            image_dir = os.path.join(dataset.get('data_root') or '', prefix.get('img', '') if isinstance(
                prefix, dict) else prefix)
            if path not in checked:
                _check_at(f'{where}.ann_file', path, (dataset.get('metainfo') or {}).get('classes'), image_dir)
                checked.append(path)
        evaluators = cfg.get(f'{split}_evaluator')
        for index, evaluator in enumerate(evaluators if isinstance(evaluators, list) else [evaluators]):
            if (isinstance(evaluator, dict) and str(evaluator.get('type', '')).endswith('CocoMetric')
                    and evaluator.get('ann_file') and evaluator['ann_file'] not in checked):
                key = f'{split}_evaluator' + (f'[{index}]' if isinstance(evaluators, list) else '')
                _check_at(f'{key}.ann_file', evaluator['ann_file'])
                checked.append(evaluator['ann_file'])
        for where, dataset in _datasets(loader.get('dataset') if loader else None,
                                        f'{split}_dataloader.dataset', _is_image_folder):
            folder = os.path.join(dataset.get('data_root') or '', dataset.get('data_prefix') or '')
            if folder not in checked and os.path.isdir(folder):
                check_image_folder(folder, where)
                checked.append(folder)
    return checked


def check_image_folder(folder: str, where: str = 'dataset') -> None:
    """Every file with an image extension under ``folder`` (the files mmpretrain's CustomDataset loads)
    decodes as an image; CocoFormatError naming the file otherwise."""
    for root, _, files in sorted(os.walk(folder)):
        for name in sorted(files):
            if name.lower().endswith(IMAGE_EXTENSIONS):
                check_image_file(os.path.join(root, name), f'{where} ({folder})')
