"""Fashion-MNIST: preparation (md5 checks, refusals), the dataset config's loader path on tiny idx files a test
writes, the GrayToRGB transform, and one check of the real files (installed by `make install`)."""
import gzip
import os

import numpy as np
import pytest
from conftest import ROOT, write_fashion_idx

from mmcompact.data import prepare_fashion_mnist
from mmcompact.data.fashion_mnist import DEBIAN_DIR, UNPACKED_MD5, check_prepared
from mmcompact.data.transforms import GrayToRGB
from mmcompact.utils import load_config

NAMES = ('train-images-idx3-ubyte', 'train-labels-idx1-ubyte', 't10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte')


def write_idx(folder, num_train=6, num_test=4, seed=0):
    """The four unpacked idx files of a tiny random Fashion-MNIST."""
    rng = np.random.default_rng(seed)
    write_fashion_idx(folder, rng.integers(0, 256, (num_train, 28, 28), dtype=np.uint8),
                      rng.integers(0, 256, (num_test, 28, 28), dtype=np.uint8))


def build_split(data_root, split):
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import DATASETS
    init_default_scope('mmpretrain')
    cfg = load_config(os.path.join(ROOT, 'configs', 'fashion_mnist', 'resnet18_1xb128_fashion-mnist.py'),
                      {f'{split}_dataloader.dataset.data_root': str(data_root)})
    return DATASETS.build(cfg[f'{split}_dataloader'].dataset)


def test_the_dataset_config_loads_idx_files_into_3x32x32_inputs(tmp_path):
    write_idx(tmp_path)
    train, val = build_split(tmp_path, 'train'), build_split(tmp_path, 'val')
    assert (len(train), len(val)) == (6, 4)  # the test split is t10k (test_mode=True)
    sample = val[3]
    assert tuple(sample['inputs'].shape) == (3, 32, 32) and int(sample['data_samples'].gt_label) == 3
    inputs = sample['inputs'].numpy()
    assert (inputs[0] == inputs[1]).all() and (inputs[:, :2] == 0).all()  # gray in every channel, padded by 2
    assert tuple(train[0]['inputs'].shape) == (3, 32, 32)


def test_prepare_refuses_missing_and_damaged_files_and_keeps_the_output(tmp_path):
    with pytest.raises(FileNotFoundError, match='dataset-fashion-mnist'):
        prepare_fashion_mnist(str(tmp_path / 'none'), str(tmp_path / 'out'))
    src = tmp_path / 'src'
    write_idx(tmp_path / 'raw')
    os.makedirs(src)
    for name in NAMES:
        with open(tmp_path / 'raw' / name, 'rb') as fin, gzip.open(src / f'{name}.gz', 'wb') as fout:
            fout.write(fin.read())
    with pytest.raises(ValueError, match=r'train-images-idx3-ubyte\.gz has md5 .* not the original'):
        prepare_fashion_mnist(str(src), str(tmp_path / 'out'))
    assert not any(f.endswith('.tmp') for f in os.listdir(tmp_path / 'out'))  # no half file left


def test_check_prepared_names_the_missing_files_and_the_command(tmp_path):
    write_idx(tmp_path / 'ok')
    check_prepared(str(tmp_path / 'ok'))
    os.remove(tmp_path / 'ok' / 't10k-images-idx3-ubyte')
    with pytest.raises(FileNotFoundError, match=r'^--data-root .*ok holds no prepared Fashion-MNIST \(t10k-images-'
                                                r'idx3-ubyte missing\): run `python tools/misc/prepare_fashion_mnist'
                                                r'.py --out .*ok`'):
        check_prepared(str(tmp_path / 'ok'), '--data-root')


def test_gray_to_rgb_copies_the_channel_and_names_a_bad_shape():
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4)
    out = GrayToRGB()(dict(img=gray))['img']
    assert out.shape == (3, 4, 3) and (out[..., 2] == gray).all()
    colour = np.zeros((3, 4, 3), np.uint8)
    assert GrayToRGB()(dict(img=colour))['img'] is colour
    with pytest.raises(ValueError, match=r'\(3, 4, 2\)'):
        GrayToRGB()(dict(img=np.zeros((3, 4, 2), np.uint8)))


@pytest.mark.skipif(not os.path.isfile(os.path.join(DEBIAN_DIR, 't10k-labels-idx1-ubyte.gz')),
                    reason=f'Fashion-MNIST is not installed in {DEBIAN_DIR} (make install installs it as root)')
def test_the_real_files_prepare_and_load(tmp_path):
    paths = prepare_fashion_mnist(DEBIAN_DIR, str(tmp_path))
    assert sorted(os.path.basename(p) for p in paths) == sorted(UNPACKED_MD5)
    train, val = build_split(tmp_path, 'train'), build_split(tmp_path, 'val')
    assert (len(train), len(val)) == (60000, 10000)
    labels = np.array([int(val.get_data_info(i)['gt_label']) for i in range(len(val))])
    assert np.bincount(labels).tolist() == [1000] * 10
    assert prepare_fashion_mnist(DEBIAN_DIR, str(tmp_path)) == paths  # checked, kept
