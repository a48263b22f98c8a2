"""Dataset files that mmdet / mmpretrain would crash on are caught before training, with the file and entry
named: an empty annotation list, a missing image, a file that is not an image (COCO and image folders)."""
import json

import pytest
from conftest import ROOT, make_image_folder

from mmcompact.data import CocoFormatError, check_coco_datasets, check_coco_file, make_coco_detection
from mmcompact.utils import load_config


@pytest.fixture
def coco(tmp_path):
    make_coco_detection(str(tmp_path), num_train=2, num_val=1, num_classes=3, size_range=(64, 80))
    return tmp_path


def _config(coco):
    return load_config(f'{ROOT}/configs/demo/student_retinanet_ghostnetv3-0.5x_synthetic.py', {
        **{f'{s}_dataloader.dataset.data_root': f'{coco}/' for s in ('train', 'val', 'test')},
        **{f'{s}_evaluator.ann_file': f'{coco}/annotations/instances_val.json' for s in ('val', 'test')}})


def test_a_good_dataset_passes_with_its_images(coco):
    assert len(check_coco_datasets(_config(coco), ("train", "val"))) == 2  # the val file serves loader and metric


def test_empty_annotations_are_refused(coco):
    path = coco / 'annotations' / 'instances_train.json'
    data = json.loads(path.read_text())
    data['annotations'] = []
    path.write_text(json.dumps(data))
    with pytest.raises(CocoFormatError, match=r"train_dataloader.dataset.ann_file: .*'annotations' is empty"):
        check_coco_datasets(_config(coco), ('train', ))


def test_missing_image_is_named(coco):
    (coco / 'train' / '000001.png').unlink()
    with pytest.raises(CocoFormatError, match=r'images\[1\] \(id 2\): image file .*000001.png.* does not exist'):
        check_coco_datasets(_config(coco), ('train', ))


def test_a_file_that_is_not_an_image_is_named(coco):
    (coco / 'train' / '000000.png').write_text('not an image')
    with pytest.raises(CocoFormatError, match=r'images\[0\] \(id 1\): .*000000.png.* is not a readable image'):
        check_coco_file(str(coco / 'annotations' / 'instances_train.json'), image_dir=str(coco / 'train'))


def test_a_non_image_in_a_classification_folder_is_named(tmp_path):
    data = make_image_folder(tmp_path / 'data', per_class=2, size=40)
    (data / 'train' / 'red' / 'broken.png').write_text('text, not pixels')
    cfg = load_config(f'{ROOT}/projects/studies/configs/kd_families/resnet18.py',
                      {f'{s}_dataloader.dataset.data_root': str(data) for s in ('train', 'val', 'test')})
    with pytest.raises(CocoFormatError, match=r'train_dataloader.dataset .*broken.png.* is not a readable image'):
        check_coco_datasets(cfg, ('train', 'val'))
