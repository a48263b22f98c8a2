"""Deterministic synthetic datasets in real formats (COCO detection, image-folder classification).

Objects are geometric shapes (the class is the shape, never the colour) drawn with random colour, size,
aspect ratio, rotation and partial occlusion on textured, noisy backgrounds, so that a small model does not
saturate in a few epochs while boxes and masks stay exact. Every image is generated from
``seed + index`` alone, so any subset is reproducible. What it is not: natural images; accuracy on it says
nothing about COCO or ImageNet, only about relative differences between methods.

Detection scenes may instead hold real objects: Fashion-MNIST items (``make_coco_detection(...,
fashion_mnist=folder)``), tinted, scaled and pasted by their own silhouette, training images from the train
items and validation images from the test items, so no validation object was seen in training.
"""
import json
import math
import os
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

SHAPES = ('circle', 'triangle', 'square', 'pentagon', 'hexagon', 'star', 'cross', 'diamond')
# Fashion-MNIST labels in the order scene classes take them, so that a few classes are unlike each other
# (trouser, bag, sneaker first; the look-alike tops last).
FASHION_SCENE_LABELS = (1, 8, 7, 3, 5, 0, 9, 2, 4, 6)


def shape_outline(shape: str, n_circle: int = 32) -> np.ndarray:
    """Unit outline of ``shape`` as (P, 2) points around the origin, radius about 1."""
    if shape == 'circle':
        angles = np.linspace(0, 2 * math.pi, n_circle, endpoint=False)
        return np.stack([np.cos(angles), np.sin(angles)], 1)
    if shape == 'star':
        angles = np.linspace(0, 2 * math.pi, 10, endpoint=False) - math.pi / 2
        radii = np.where(np.arange(10) % 2 == 0, 1.0, 0.45)
        return np.stack([radii * np.cos(angles), radii * np.sin(angles)], 1)
    if shape == 'cross':
        a, b = 1.0, 0.33
        return np.array([[-b, -a], [b, -a], [b, -b], [a, -b], [a, b], [b, b], [b, a], [-b, a], [-b, b],
                         [-a, b], [-a, -b], [-b, -b]])
    sides = {'triangle': 3, 'square': 4, 'pentagon': 5, 'hexagon': 6, 'diamond': 4}[shape]
    offset = -math.pi / 2 if shape != 'square' else math.pi / 4
    angles = np.linspace(0, 2 * math.pi, sides, endpoint=False) + offset
    points = np.stack([np.cos(angles), np.sin(angles)], 1)
    return points * np.array([0.6, 1.0]) if shape == 'diamond' else points


def _background(rng: np.random.Generator, h: int, w: int, clutter: bool = True) -> Image.Image:
    """Gradient + stripes + random strokes + Gaussian noise, slightly blurred; without ``clutter`` a gradient
    with light noise only."""
    y, x = np.mgrid[0:h, 0:w]
    c0, c1 = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    t = (x * rng.uniform(-1, 1) + y * rng.uniform(-1, 1)) / max(h, w)
    t = (t - t.min()) / max(1e-6, t.max() - t.min())
    img = c0[None, None] * (1 - t[..., None]) + c1[None, None] * t[..., None]
    if not clutter:
        img += rng.normal(0, 4, size=img.shape)
        return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
    period, angle = rng.uniform(6, 30), rng.uniform(0, math.pi)
    stripes = np.sin((x * math.cos(angle) + y * math.sin(angle)) * 2 * math.pi / period)
    img += stripes[..., None] * rng.uniform(5, 35)
    img += rng.normal(0, rng.uniform(4, 20), size=img.shape)
    image = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(2, 8))):  # clutter: random strokes, unlike any object class
        points = [(float(rng.uniform(0, w)), float(rng.uniform(0, h))) for _ in range(int(rng.integers(2, 5)))]
        draw.line(points, fill=tuple(int(v) for v in rng.integers(0, 256, 3)), width=int(rng.integers(2, 7)))
    return image.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 2.0)))


def _place(rng: np.random.Generator, shape: str, h: int, w: int, size_range: Tuple[float, float],
           aspect_range: Tuple[float, float] = (0.6, 1.6)):
    """Random size, aspect ratio, rotation and position; returns the (P, 2) polygon in pixels."""
    size = rng.uniform(*size_range) * min(h, w) / 2
    aspect = rng.uniform(*aspect_range)
    angle = rng.uniform(0, 2 * math.pi)
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    points = (shape_outline(shape) * np.array([size * aspect, size / aspect])) @ rotation.T
    lo, hi = points.min(0), points.max(0)
    center = np.array([rng.uniform(-lo[0], w - hi[0]) if hi[0] - lo[0] < w else w / 2,
                       rng.uniform(-lo[1], h - hi[1]) if hi[1] - lo[1] < h else h / 2])
    return np.clip(points + center, 0, [w - 1, h - 1])


def _iou(a: Sequence[float], b: Sequence[float]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _place_item(rng: np.random.Generator, item: np.ndarray, h: int, w: int, size_range: Tuple[float, float]):
    """A (28, 28) uint8 item scaled to ``size_range`` of the image side (aspect 0.8-1.25), flipped at random,
    at a random position inside the image: (opacity (sh, sw) float in [0, 1], (x0, y0), silhouette mask
    (sh, sw) bool). The mask is where the item is more than half opaque; it may be empty."""
    side = rng.uniform(*size_range) * min(h, w)
    aspect = rng.uniform(0.8, 1.25)
    sw, sh = min(w, max(4, round(side * aspect))), min(h, max(4, round(side / aspect)))
    intensity = np.asarray(Image.fromarray(item).resize((sw, sh), Image.BILINEAR), np.float32) / 255
    if rng.random() < 0.5:
        intensity = intensity[:, ::-1]
    opacity = np.clip(intensity * 2.5, 0, 1)
    origin = (int(rng.integers(0, w - sw + 1)), int(rng.integers(0, h - sh + 1)))
    return opacity, origin, opacity > 0.5


def _paste_item(image: np.ndarray, opacity: np.ndarray, origin: Tuple[int, int], colour: np.ndarray) -> None:
    """Blend the item into ``image`` (H, W, 3 float) in ``colour``, darker where the item is, so its texture
    shows."""
    x0, y0 = origin
    sh, sw = opacity.shape
    region = image[y0:y0 + sh, x0:x0 + sw]
    shaded = colour[None, None] * (0.35 + 0.65 * opacity[..., None])
    region[:] = region * (1 - opacity[..., None]) + shaded * opacity[..., None]


def detection_image(seed: int, num_classes: int, size_range: Tuple[int, int] = (256, 512),
                    max_objects: int = 6, clutter: bool = True,
                    items: Optional[Sequence[np.ndarray]] = None) -> Tuple[Image.Image, List[dict]]:
    """One image and its objects ``[{label, polygon (P, 2), bbox (x1, y1, x2, y2), area}]``.

    Objects overlap each other by at most IoU 0.3 (partial occlusion); later objects are drawn on top, and
    an object's box and polygon are those of its whole shape. ``clutter=False``: a plain gradient background
    with light noise (see ``_background``) and objects of 20-50% of the image side instead of 12-50%.
    ``items``: per class, a (M, 28, 28) uint8 stack of real objects (e.g. Fashion-MNIST items of one label)
    drawn instead of the shapes; an item's box is that of its silhouette, its polygon that box, its area the
    silhouette's pixels.
    """
    rng = np.random.default_rng(seed)
    h, w = (int(v) for v in rng.integers(size_range[0], size_range[1] + 1, 2))
    image = _background(rng, h, w, clutter)
    canvas = np.asarray(image, np.float32).copy() if items is not None else None
    draw = ImageDraw.Draw(image)
    objects = []
    scale = (0.12, 0.5) if clutter else (0.2, 0.5)
    for _ in range(int(rng.integers(1, max_objects + 1))):
        label = int(rng.integers(0, num_classes))
        for _attempt in range(10):
            if items is None:
                polygon = _place(rng, SHAPES[label], h, w, scale)
                box = [*polygon.min(0), *polygon.max(0)]
            else:
                opacity, origin, mask = _place_item(rng, items[label][int(rng.integers(len(items[label])))],
                                                    h, w, scale)
                ys, xs = np.nonzero(mask)
                box = [origin[0] + xs.min(), origin[1] + ys.min(), origin[0] + xs.max() + 1,
                       origin[1] + ys.max() + 1] if len(xs) else [0, 0, 0, 0]
            if box[2] - box[0] >= 4 and box[3] - box[1] >= 4 and \
                    all(_iou(box, o['bbox']) <= 0.3 for o in objects):
                break
        else:
            continue
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        if items is None:
            draw.polygon([tuple(p) for p in polygon], fill=colour,
                         outline=tuple(int(v) for v in rng.integers(0, 256, 3)))
            area = _polygon_area(polygon)
        else:
            _paste_item(canvas, opacity, origin, np.array(colour, np.float32))
            x1, y1, x2, y2 = (float(v) for v in box)
            polygon, area = np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]]), float(mask.sum())
        objects.append(dict(label=label, polygon=polygon, bbox=[float(v) for v in box], area=area))
    if items is not None:
        image = Image.fromarray(np.clip(canvas, 0, 255).astype(np.uint8))
    return image, objects


def fashion_scene_classes(num_classes: int) -> List[str]:
    """The class names of Fashion-MNIST scenes with ``num_classes`` classes (``FASHION_SCENE_LABELS`` order)."""
    from .fashion_mnist import CLASSES
    return [CLASSES[label] for label in FASHION_SCENE_LABELS[:num_classes]]


def fashion_scene_items(folder: str, split: str, num_classes: int) -> Tuple[List[np.ndarray], List[str]]:
    """The per-class item stacks of ``detection_image(items=...)`` from Fashion-MNIST in ``folder`` (prepared or
    the original ``.gz`` files; ``split`` 'train' or 'test') and their class names, classes in
    ``FASHION_SCENE_LABELS`` order."""
    from .fashion_mnist import CLASSES, load_items
    if not 1 <= num_classes <= len(FASHION_SCENE_LABELS):
        raise ValueError(f'num_classes must be in [1, {len(FASHION_SCENE_LABELS)}] with Fashion-MNIST objects '
                         f'(one class per label), got {num_classes}')
    images, labels = load_items(folder, split)
    chosen = FASHION_SCENE_LABELS[:num_classes]
    stacks = [images[labels == label] for label in chosen]
    empty = [CLASSES[label] for label, stack in zip(chosen, stacks) if not len(stack)]
    if empty:
        raise ValueError(f'Fashion-MNIST in {folder} ({split}) has no item of class {", ".join(empty)}: '
                         'use fewer classes or the full files')
    return stacks, fashion_scene_classes(num_classes)


def make_coco_detection(out_dir: str, num_train: int, num_val: int, num_classes: int = 6, seed: int = 0,
                        size_range: Tuple[int, int] = (256, 512), progress=None, max_objects: int = 6,
                        clutter: bool = True, fashion_mnist: Optional[str] = None) -> Dict[str, str]:
    """Write ``train/``, ``val/`` images and ``annotations/instances_{train,val}.json`` (COCO format:
    xywh boxes, polygon masks, ``iscrowd=0``) under ``out_dir``; returns the annotation paths.
    ``max_objects`` per image (1 to it, uniformly) and ``clutter``: see ``detection_image``.
    ``fashion_mnist``: a folder of Fashion-MNIST files (see ``fashion_scene_items``): the objects are its
    items, train items in ``train/`` and test items in ``val/``, and the categories their class names.

    ``progress``: optional callable(n) called after each image (e.g. a tqdm bar's update).
    """
    if fashion_mnist is None and not 1 <= num_classes <= len(SHAPES):
        raise ValueError(f'num_classes must be in [1, {len(SHAPES)}] (one shape per class), got {num_classes}')
    sources = {split: fashion_scene_items(fashion_mnist, source, num_classes) if fashion_mnist else
               (None, list(SHAPES[:num_classes])) for split, source in (('train', 'train'), ('val', 'test'))}
    categories = [dict(id=i + 1, name=name) for i, name in enumerate(sources['train'][1])]
    paths = {}
    os.makedirs(os.path.join(out_dir, 'annotations'), exist_ok=True)
    for split, count, offset in (('train', num_train, 0), ('val', num_val, 1_000_000)):
        os.makedirs(os.path.join(out_dir, split), exist_ok=True)
        images, annotations = [], []
        for i in range(count):
            image, objects = detection_image(seed * 10_000_019 + offset + i, num_classes, size_range,
                                             max_objects, clutter, sources[split][0])
            name = f'{i:06d}.png'
            image.save(os.path.join(out_dir, split, name))
            images.append(dict(id=i + 1, file_name=name, height=image.height, width=image.width))
            for obj in objects:
                x1, y1, x2, y2 = obj['bbox']
                annotations.append(dict(
                    id=len(annotations) + 1, image_id=i + 1, category_id=obj['label'] + 1,
                    bbox=[x1, y1, x2 - x1, y2 - y1], area=float(obj['area']),
                    segmentation=[[float(v) for v in obj['polygon'].reshape(-1)]], iscrowd=0))
            if progress is not None:
                progress(1)
        path = os.path.join(out_dir, 'annotations', f'instances_{split}.json')
        with open(path, 'w') as f:
            json.dump(dict(images=images, annotations=annotations, categories=categories), f)
        paths[split] = path
    return paths


def _polygon_area(points: np.ndarray) -> float:
    x, y = points[:, 0], points[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1))))


MARKS = ('plain', 'dot', 'bar')


def class_names(num_classes: int, family_size: int = 1) -> List[str]:
    """Class names: the shape names, or ``<shape>-<mark>`` when classes come in families of
    ``family_size`` (classes ``f * family_size + m`` share shape ``f``; ``m`` picks the mark)."""
    if family_size == 1:
        return list(SHAPES[:num_classes])
    return [f'{SHAPES[c // family_size]}-{MARKS[c % family_size]}' for c in range(num_classes)]


def _draw_mark(draw: ImageDraw.ImageDraw, rng: np.random.Generator, polygon: np.ndarray, mark: str,
               fill: Tuple[int, int, int], scale: float = 0.2) -> None:
    """A mark inside an object filled with ``fill``: nothing, a dot, or a bar through the centre, in black or
    white, whichever contrasts more with the fill; its radius is ``scale`` times the object's inner radius."""
    if mark == 'plain':
        return
    centre = polygon.mean(0)
    radius = scale * float(np.linalg.norm(polygon - centre, axis=1).min() + 1)
    colour = (0, 0, 0) if 0.299 * fill[0] + 0.587 * fill[1] + 0.114 * fill[2] > 128 else (255, 255, 255)
    if mark == 'dot':
        draw.ellipse([*(centre - radius), *(centre + radius)], fill=colour)
    else:
        angle = rng.uniform(0, math.pi)
        d = np.array([math.cos(angle), math.sin(angle)]) * 2.5 * radius
        draw.line([tuple(centre - d), tuple(centre + d)], fill=colour, width=max(2, int(radius)))


def make_classification(out_dir: str, num_train: int, num_val: int, num_classes: int = 6, seed: int = 0,
                        size: int = 64, progress=None, family_size: int = 1, clutter: bool = True,
                        mark_scale: float = 0.2) -> None:
    """Write ``{train,val}/<class>/<index>.png`` (mmpretrain CustomDataset layout): one shape per image
    (the label) with a random colour, pose and scale, on a cluttered background with a smaller distractor
    shape of another shape.

    ``family_size`` > 1 gives classes with similarity structure, as real data has: classes come in
    families of ``family_size`` that share a shape and differ only in a small mark inside it (none, a dot,
    a bar; see ``MARKS``), so a class is much more like its siblings than like other families.
    ``clutter=False`` makes the task easier: a plain gradient background, no distractor shape, aspect ratios
    within 0.8-1.25 (so that shapes keep their identity). ``mark_scale`` is the mark's radius as a fraction of
    the shape's inner radius (0.2: a small mark, hard at 48 px; 0.45: plain to see at 32 px).
    """
    if not 1 <= family_size <= len(MARKS):
        raise ValueError(f'family_size must be in [1, {len(MARKS)}] (one mark per family member), got {family_size}')
    if not 0 < mark_scale <= 0.5:
        raise ValueError(f'mark_scale must be in (0, 0.5] (a fraction of the shape\'s inner radius), got {mark_scale}')
    if not 2 <= num_classes <= len(SHAPES) * family_size:
        raise ValueError(f'num_classes must be in [2, {len(SHAPES) * family_size}] with family_size '
                         f'{family_size}, got {num_classes}')
    names = class_names(num_classes, family_size)
    num_families = -(-num_classes // family_size)
    for split, count, offset in (('train', num_train, 0), ('val', num_val, 1_000_000)):
        for i in range(count):
            rng = np.random.default_rng(seed * 10_000_019 + offset + i)
            label = i % num_classes
            family = label // family_size
            image = _background(rng, size, size, clutter)
            draw = ImageDraw.Draw(image)
            if num_families > 1 and clutter:
                distractor = int((family + rng.integers(1, num_families)) % num_families)
                polygon = _place(rng, SHAPES[distractor], size, size, (0.15, 0.3))
                draw.polygon([tuple(p) for p in polygon], fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
            polygon = _place(rng, SHAPES[family], size, size, (0.45, 0.9), (0.6, 1.6) if clutter else (0.8, 1.25))
            fill = tuple(int(v) for v in rng.integers(0, 256, 3))
            draw.polygon([tuple(p) for p in polygon], fill=fill)
            if family_size > 1:
                _draw_mark(draw, rng, polygon, MARKS[label % family_size], fill, mark_scale)
            folder = os.path.join(out_dir, split, names[label])
            os.makedirs(folder, exist_ok=True)
            image.save(os.path.join(folder, f'{i:06d}.png'))
            if progress is not None:
                progress(1)
