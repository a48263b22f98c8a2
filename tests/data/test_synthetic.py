"""Synthetic data: deterministic, in real formats, loaded by mmdet/mmpretrain and scored by CocoMetric."""
import filecmp
import json

import pytest
import torch
from conftest import write_fashion_idx

from mmcompact.data import SHAPES, make_classification, make_coco_detection


@pytest.fixture(scope='module')
def coco(tmp_path_factory):
    root = tmp_path_factory.mktemp('synthetic_coco')
    make_coco_detection(str(root), num_train=3, num_val=2, num_classes=4, seed=3, size_range=(128, 160))
    return root


def test_same_seed_same_files_other_seed_other_files(coco, tmp_path):
    make_coco_detection(str(tmp_path / 'a'), 3, 2, 4, seed=3, size_range=(128, 160))
    make_coco_detection(str(tmp_path / 'b'), 3, 2, 4, seed=4, size_range=(128, 160))
    for name in ('annotations/instances_train.json', 'train/000002.png', 'val/000001.png'):
        assert filecmp.cmp(coco / name, tmp_path / 'a' / name, shallow=False)
    assert not filecmp.cmp(coco / 'train/000000.png', tmp_path / 'b' / 'train/000000.png', shallow=False)


def test_coco_files_load_in_mmdet_and_ground_truth_scores_full_map(coco):
    from mmdet.datasets import CocoDataset
    from mmdet.evaluation import CocoMetric
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    annotations = json.loads((coco / 'annotations' / 'instances_val.json').read_text())
    assert all(a['iscrowd'] == 0 and len(a['segmentation'][0]) >= 6 for a in annotations['annotations'])
    dataset = CocoDataset(data_root=str(coco), ann_file='annotations/instances_val.json',
                          data_prefix=dict(img='val/'), metainfo=dict(classes=SHAPES[:4]),
                          pipeline=[dict(type='LoadImageFromFile'),
                                    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
                                    dict(type='PackDetInputs')])
    assert len(dataset) == 2
    metric = CocoMetric(ann_file=str(coco / 'annotations' / 'instances_val.json'), metric=['bbox', 'segm'])
    metric.dataset_meta = dataset.metainfo
    for i in range(len(dataset)):
        sample = dataset[i]['data_samples']
        gt = sample.gt_instances
        assert len(gt) >= 1 and gt.masks.height == sample.img_shape[0]
        pred = dict(img_id=sample.img_id, ori_shape=sample.ori_shape,
                    pred_instances=dict(bboxes=gt.bboxes.tensor, labels=gt.labels,
                                        scores=torch.ones(len(gt)),
                                        masks=torch.from_numpy(gt.masks.to_ndarray()).bool()))
        metric.process({}, [pred])
    results = metric.evaluate(len(dataset))
    assert results['coco/bbox_mAP'] == pytest.approx(1.0) and results['coco/segm_mAP'] > 0.9


def test_classification_folder_loads_in_mmpretrain(tmp_path):
    from mmpretrain.datasets import CustomDataset
    make_classification(str(tmp_path), num_train=12, num_val=6, num_classes=3, size=48)
    dataset = CustomDataset(data_root=str(tmp_path), data_prefix='train', pipeline=[])
    assert len(dataset) == 12 and list(dataset.CLASSES) == sorted(SHAPES[:3])
    assert sorted({dataset.get_gt_labels()[i] for i in range(12)}) == [0, 1, 2]


def test_make_synthetic_cli_refuses_to_overwrite_and_bad_counts(tmp_path, cli):
    code, stdout, stderr = cli('tools/misc/make_synthetic.py', 'cls', tmp_path / 'cls', '--num-train', 4, '--num-val',
                               2,
                               '--classes', 2, '--size', 32)
    assert code == 0, stderr
    assert 'wrote 4 train + 2 val' in stdout
    code, _, stderr = cli('tools/misc/make_synthetic.py', 'cls', tmp_path / 'cls', '--num-train', 4)
    assert code == 1 and 'not empty' in stderr and '--force' in stderr
    code, _, stderr = cli('tools/misc/make_synthetic.py', 'det', tmp_path / 'det', '--classes', 9)
    assert code == 1 and 'num_classes must be in [1, 8]' in stderr
    code, _, stderr = cli('tools/misc/make_synthetic.py', 'det', tmp_path / 'det2', '--num-train', 0)
    assert code == 1 and '--num-train' in stderr


def test_class_families_share_a_shape_and_differ_by_their_mark(tmp_path):
    from mmcompact.data import class_names
    make_classification(str(tmp_path), num_train=12, num_val=6, num_classes=6, size=48, family_size=3)
    names = class_names(6, 3)
    assert names == ['circle-plain', 'circle-dot', 'circle-bar', 'triangle-plain', 'triangle-dot', 'triangle-bar']
    assert sorted(p.name for p in (tmp_path / 'train').iterdir()) == sorted(names)
    assert all(len(list((tmp_path / 'train' / n).iterdir())) == 2 for n in names)
    # family_size 1 keeps the original dataset byte for byte (same random stream)
    make_classification(str(tmp_path / 'a'), 4, 2, 4, size=48)
    make_classification(str(tmp_path / 'b'), 4, 2, 4, size=48, family_size=1)
    assert filecmp.cmp(tmp_path / 'a/train/circle/000000.png', tmp_path / 'b/train/circle/000000.png', shallow=False)
    with pytest.raises(ValueError, match='family_size'):
        make_classification(str(tmp_path / 'c'), 4, 2, 4, family_size=4)


def test_mark_scale_grows_the_mark_and_keeps_the_rest(tmp_path):
    """A larger mark_scale changes only the marked classes' pixels; the default is the
    original dataset; out-of-range values are refused with the valid range."""
    import numpy as np
    from PIL import Image
    for name, scale in (('small', 0.2), ('large', 0.45)):
        make_classification(str(tmp_path / name), 3, 1, 3, size=48, family_size=3, mark_scale=scale)
    make_classification(str(tmp_path / 'default'), 3, 1, 3, size=48, family_size=3)
    assert filecmp.cmp(tmp_path / 'small/train/circle-dot/000001.png',
                       tmp_path / 'default/train/circle-dot/000001.png', shallow=False)

    def changed(cls, index):
        pair = [np.asarray(Image.open(tmp_path / f'{s}/train/{cls}/{index:06d}.png')) for s in ('small', 'large')]
        return int((pair[0] != pair[1]).any(-1).sum())
    assert changed('circle-plain', 0) == 0
    assert changed('circle-dot', 1) > 0 and changed('circle-bar', 2) > 0
    with pytest.raises(ValueError, match=r'mark_scale must be in \(0, 0.5\]'):
        make_classification(str(tmp_path / 'bad'), 3, 1, 3, family_size=3, mark_scale=0.8)


def test_fashion_mnist_scenes_use_train_items_for_train_and_test_items_for_val(tmp_path):
    """Boxes follow each item's silhouette (square train items scaled to aspect 0.64-1.56, thin upright test
    items), inside the image, categories named by their Fashion-MNIST classes; the scenes load in mmdet with
    those names."""
    import numpy as np
    from mmdet.datasets import CocoDataset
    from mmengine.registry import init_default_scope
    square, bar = np.zeros((28, 28), np.uint8), np.zeros((28, 28), np.uint8)
    square[4:24, 4:24], bar[2:26, 12:16] = 255, 255
    write_fashion_idx(tmp_path / 'fm', np.repeat(square[None], 20, 0), np.repeat(bar[None], 20, 0), gz=True)
    make_coco_detection(str(tmp_path / 'scenes'), 6, 6, 3, size_range=(128, 160), max_objects=3, clutter=False,
                        fashion_mnist=str(tmp_path / 'fm'))
    for split, ratio in (('train', lambda r: 0.6 <= r <= 1.7), ('val', lambda r: r <= 0.4)):
        coco = json.loads((tmp_path / 'scenes' / 'annotations' / f'instances_{split}.json').read_text())
        assert [c['name'] for c in coco['categories']] == ['trouser', 'bag', 'sneaker']
        sizes = {im['id']: (im['width'], im['height']) for im in coco['images']}
        assert len(coco['annotations']) >= 6
        for a in coco['annotations']:
            x, y, w, h = a['bbox']
            assert ratio(w / h), (split, a['bbox'])
            assert x >= 0 and y >= 0 and x + w <= sizes[a['image_id']][0] and y + h <= sizes[a['image_id']][1]
            assert 0 < a['area'] <= w * h
    init_default_scope('mmdet')
    dataset = CocoDataset(data_root=str(tmp_path / 'scenes'), ann_file='annotations/instances_val.json',
                          data_prefix=dict(img='val/'), metainfo=dict(classes=('trouser', 'bag', 'sneaker')),
                          pipeline=[dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', with_bbox=True),
                                    dict(type='PackDetInputs')])
    assert len(dataset) == 6 and sum(len(dataset[i]['data_samples'].gt_instances) for i in range(6)) >= 6


def test_fashion_mnist_scenes_name_a_missing_class_or_file(tmp_path, cli):
    import numpy as np

    from mmcompact.data.fashion_mnist import load_items
    items = np.full((3, 28, 28), 255, np.uint8)
    write_fashion_idx(tmp_path / 'few', items, items)  # labels 0-2 only: no bag (8), no sneaker (7)
    with pytest.raises(ValueError, match='no item of class bag, sneaker: use fewer classes'):
        make_coco_detection(str(tmp_path / 'out'), 2, 2, 3, fashion_mnist=str(tmp_path / 'few'))
    (tmp_path / 'few' / 't10k-labels-idx1-ubyte').write_bytes(b'\x00\x00\x08\x01\x00\x00\x00\x05\x00')
    with pytest.raises(ValueError, match=r't10k-labels-idx1-ubyte is not an idx file of labels .*prepare_fashion'):
        load_items(str(tmp_path / 'few'), 'test')
    code, _, stderr = cli('tools/misc/make_synthetic.py', 'det', tmp_path / 'det', '--fashion-mnist',
                          tmp_path / 'nowhere')
    assert code == 1 and 'nowhere has neither train-images-idx3-ubyte nor train-images-idx3-ubyte.gz' in stderr
    assert not (tmp_path / 'det').exists()
    code, _, stderr = cli('tools/misc/make_synthetic.py', 'cls', tmp_path / 'cls', '--fashion-mnist', tmp_path / 'few')
    assert code == 1 and 'use it with `det`' in stderr
