import importlib.util
import os
import re
import subprocess
import sys

import pytest
import torch
from torch.nn.modules.batchnorm import _BatchNorm

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

if os.environ.get('PYTEST_XDIST_WORKER'):
    # `make test` runs 2 pytest-xdist workers side by side: one thread each (and in the tools they start),
    # so that they share the cores instead of fighting over them
    os.environ['OMP_NUM_THREADS'] = '1'
    torch.set_num_threads(1)


def randomize_bn(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Give every BatchNorm random affine parameters and running statistics, at the scale of a trained
    network (gains around 0.5-1.4, so that activations stay O(1) through 20+ blocks)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, _BatchNorm):
                n = m.num_features
                m.running_mean.copy_((torch.rand(n, generator=g) - 0.5) * 0.5)
                m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
                if m.weight is not None:
                    m.weight.copy_(torch.rand(n, generator=g) * 0.5 + 0.5)
                    m.bias.copy_((torch.rand(n, generator=g) - 0.5) * 0.4)
    return model


def write_fashion_idx(folder, train_images, test_images, gz=False):
    """The four Fashion-MNIST idx files in ``folder`` (big-endian magic and sizes, then uint8 data; labels
    0-9 cycling) for (N, 28, 28) uint8 train and test images, gzip-compressed if ``gz`` as the original
    archives are (``<name>.gz``)."""
    import gzip
    import struct

    import numpy as np
    os.makedirs(folder, exist_ok=True)
    for split, images in (('train', train_images), ('t10k', test_images)):
        n = len(images)
        for name, data in ((f'{split}-images-idx3-ubyte',
                            struct.pack('>IIII', 2051, n, 28, 28) + np.asarray(images, np.uint8).tobytes()),
                           (f'{split}-labels-idx1-ubyte',
                            struct.pack('>II', 2049, n) + (np.arange(n) % 10).astype(np.uint8).tobytes())):
            with (gzip.open if gz else open)(os.path.join(folder, name + ('.gz' if gz else '')), 'wb') as f:
                f.write(data)


def run_tool(*args, cwd=ROOT):
    """Run ``python <args>`` in a fresh interpreter (for what only a new process shows). The timeout only
    guards against a hang: the toy-size studies take 1-2 minutes on an idle 2-core machine, and over 10 when
    the machine is shared (a 600 s limit failed a loaded run)."""
    env = dict(os.environ, PYTHONWARNINGS='ignore')
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, env=env,
                          timeout=1800)


def torchrun_two_processes(script_and_args, port: int = 29500):
    """``torchrun --nproc_per_node 2 SCRIPT ARGS`` (gloo on CPU), one thread per process; returns the
    completed process (stdout, stderr captured)."""
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONWARNINGS='ignore')
    return subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node', '2',
                           '--master_port', str(port), *map(str, script_and_args)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)


@pytest.fixture
def cli(capsys, monkeypatch):
    """Call the ``main(argv)`` of a tool (its path from the repository root, e.g. ``tools/deployment/fold.py``)
    in this process (saves the 9 s import of a new one); returns (exit code, stdout, stderr)."""
    monkeypatch.chdir(ROOT)

    def call(path, *argv):
        name = re.sub(r'\W', '_', path)
        spec = importlib.util.spec_from_file_location(f'tool_{name}', os.path.join(ROOT, path))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        capsys.readouterr()
        try:
            code = module.main([str(a) for a in argv])
        except SystemExit as exit_:  # argparse's usage errors
            code = exit_.code
        out, err = capsys.readouterr()
        return code, out, err

    return call


def make_image_folder(root, per_class: int = 4, size: int = 40, seed: int = 0):
    """mmpretrain CustomDataset layout: root/{train,val}/{red,blue}/*.png, colour-tinted noise."""
    import numpy as np
    from PIL import Image
    rng = np.random.default_rng(seed)
    for split in ('train', 'val'):
        for label, tint in (('red', (200, 30, 30)), ('blue', (30, 30, 200))):
            folder = root / split / label
            folder.mkdir(parents=True)
            for i in range(per_class):
                pixels = np.clip(rng.normal(tint, 40, size=(size, size, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(folder / f'{i}.png')
    return root


def make_coco(root, num_images: int = 4, size=(96, 128), num_classes: int = 2, seed: int = 0):
    """A tiny COCO-format detection set: root/images/*.png and root/annotations.json (filled rectangles)."""
    import json

    import numpy as np
    from PIL import Image
    rng = np.random.default_rng(seed)
    (root / 'images').mkdir(parents=True)
    images, annotations = [], []
    for i in range(num_images):
        h, w = size
        pixels = rng.integers(0, 80, size=(h, w, 3)).astype(np.uint8)
        for j in range(2):
            bw, bh = int(rng.integers(20, 50)), int(rng.integers(20, 40))
            x, y = int(rng.integers(0, w - bw)), int(rng.integers(0, h - bh))
            label = int(rng.integers(0, num_classes))
            pixels[y:y + bh, x:x + bw] = (220, 40, 40) if label == 0 else (40, 220, 40)
            annotations.append(dict(id=len(annotations) + 1, image_id=i + 1, category_id=label + 1,
                                    bbox=[x, y, bw, bh], area=bw * bh, iscrowd=0))
        Image.fromarray(pixels).save(root / 'images' / f'{i}.png')
        images.append(dict(id=i + 1, file_name=f'{i}.png', height=h, width=w))
    categories = [dict(id=k + 1, name=f'class{k}') for k in range(num_classes)]
    (root / 'annotations.json').write_text(json.dumps(dict(images=images, annotations=annotations,
                                                           categories=categories)))
    return root


SEARCH_CONFIG = os.path.join(ROOT, 'projects', 'studies', 'configs', 'structure', 'resnet18_synthetic_cls_search.py')
# a tiny structure search: the `tiny_search` fixture fills in SEARCH_CONFIG and the data
TINY_SEARCH = """
_base_ = ['{base}']
model = dict(head=dict(num_classes=2))
data_preprocessor = dict(num_classes=2)
train_dataloader = dict(batch_size=4, dataset=dict(data_root='{data}'))
val_dataloader = dict(batch_size=8, dataset=dict(data_root='{data}'))
test_dataloader = val_dataloader
structure_search = dict(
    teacher_checkpoint=None, input_shape=(3, 32, 32), epochs=3, checkpoint_interval=2,
    correlation_samples=5,
    candidates=[dict(type='Keep'), dict(type='DepthwiseSeparable'),
                dict(type='BasicResidual', width_ratio=0.25), dict(type='Skip')])
"""


@pytest.fixture(scope='module')
def tiny_search(tmp_path_factory):
    """(config path, config): a ResNet-18 teacher (random weights) over 32x32 two-class images, 3-4
    candidates per block."""
    from mmcompact.utils import load_config
    root = tmp_path_factory.mktemp('search')
    data = make_image_folder(root / 'cls', per_class=8, size=32)
    path = root / 'tiny_search.py'
    path.write_text(TINY_SEARCH.format(base=SEARCH_CONFIG, data=data))
    return str(path), load_config(str(path))


def match_detections(reference, candidate, iou_threshold: float = 0.99) -> dict:
    """Match two detectors' ``pred_instances`` (one image): same label and IoU >= ``iou_threshold``.

    Returns counts, the number of reference boxes matched, and the max score difference of matches.
    """
    from mmdet.structures.bbox import bbox_overlaps
    ref, cand = reference.pred_instances, candidate.pred_instances
    result = dict(reference=len(ref), candidate=len(cand), matched=0, max_score_diff=0.0)
    if len(ref) == 0 or len(cand) == 0:
        return result
    iou = bbox_overlaps(ref.bboxes, cand.bboxes)
    iou[ref.labels[:, None] != cand.labels[None, :]] = 0
    best_iou, best = iou.max(dim=1)
    hit = best_iou >= iou_threshold
    result['matched'] = int(hit.sum())
    if hit.any():
        result['max_score_diff'] = float((ref.scores[hit] - cand.scores[best[hit]]).abs().max())
    return result


def build_classifier(width, num_classes=1000, deploy=False):
    """An mmpretrain GhostNetV3 classifier of ``width`` (the official head: 1x1 conv to 1280, then fc)."""
    from mmengine.registry import MODELS, DefaultScope

    from mmcompact.models.backbones.ghostnetv3 import LAST_CHANNELS
    from mmcompact.utils import make_divisible
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return MODELS.build(dict(
            type='ImageClassifier',
            backbone=dict(type='mmcompact.GhostNetV3', widen_factor=width, deploy=deploy),
            neck=dict(type='GlobalAveragePooling'),
            head=dict(type='mmcompact.GhostNetV3ClsHead', num_classes=num_classes,
                      in_channels=make_divisible(LAST_CHANNELS * width))))
