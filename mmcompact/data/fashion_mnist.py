"""Fashion-MNIST (Zalando, 60,000 train / 10,000 test 28x28 grayscale images, 10 classes) prepared for
mmpretrain's ``FashionMNIST`` dataset, which reads the four unpacked idx files from ``data_root``."""
import gzip
import hashlib
import os
import shutil
from typing import Dict, List, Optional, Tuple

import numpy as np

# Where the Debian/Ubuntu package ``dataset-fashion-mnist`` puts the four original ``.gz`` files.
DEBIAN_DIR = '/usr/share/datasets/fashion-mnist'
INSTALL_HINT = ('install the Debian package (apt-get install dataset-fashion-mnist, files in '
                f'{DEBIAN_DIR}) or download the four .gz files from '
                'https://github.com/zalandoresearch/fashion-mnist and pass their folder as --src')


# md5 of the unpacked idx files of the original archives. The Debian package recompresses the archives, so
# its .gz files differ from mmpretrain's md5 list while their content is the same: a .gz that fails
# mmpretrain's list is accepted when what it unpacks to matches these.
UNPACKED_MD5 = {
    'train-images-idx3-ubyte': 'f4a8712d7a061bf5bd6d2ca38dc4d50a',
    'train-labels-idx1-ubyte': '9018921c3c673c538a1fc5bad174d6f9',
    't10k-images-idx3-ubyte': '8181f5470baa50b63fa0f6fddb340f0a',
    't10k-labels-idx1-ubyte': '15d484375f8d13e6eb1aabb0c3f46965',
}


# The ten classes, by label.
CLASSES = ('t-shirt/top', 'trouser', 'pullover', 'dress', 'coat', 'sandal', 'shirt', 'sneaker', 'bag', 'ankle_boot')


def _read_idx(path: str, magic: int, item_shape: Tuple[int, ...]) -> np.ndarray:
    """The uint8 array of one idx file (big-endian magic, count, sizes; ``.gz`` read through gzip)."""
    with (gzip.open if path.endswith('.gz') else open)(path, 'rb') as f:
        data = f.read()
    header = 4 * (2 + len(item_shape))
    fields = np.frombuffer(data[:header], '>u4')
    if int(fields[0]) != magic or tuple(int(v) for v in fields[2:]) != item_shape \
            or len(data) - header != int(fields[1]) * int(np.prod(item_shape, dtype=np.int64)):
        what = 'x'.join(map(str, item_shape)) + ' images' if item_shape else 'labels'
        raise ValueError(f'{path} is not an idx file of {what} (magic {magic}): header {fields.tolist()}, '
                         f'{len(data) - header} data bytes; prepare the folder again with '
                         '`python tools/misc/prepare_fashion_mnist.py`')
    return np.frombuffer(data, np.uint8, offset=header).reshape(-1, *item_shape)


def _find(folder: str, name: str, suffixes: Tuple[str, ...]) -> Optional[str]:
    """The first of ``folder/name + suffix`` (in ``suffixes`` order) that is a file, or None."""
    return next((path for path in (os.path.join(folder, name + suffix) for suffix in suffixes)
                 if os.path.isfile(path)), None)


def load_items(folder: str, split: str) -> Tuple[np.ndarray, np.ndarray]:
    """(images uint8 (N, 28, 28), labels int64 (N,)) of the ``'train'`` or ``'test'`` split from ``folder``:
    a prepared ``data_root`` (the unpacked idx files) or the original ``.gz`` files (e.g. ``DEBIAN_DIR``).
    FileNotFoundError names the folder, the missing file and how to get it."""
    prefix = {'train': 'train', 'test': 't10k'}[split]
    paths = []
    for name in (f'{prefix}-images-idx3-ubyte', f'{prefix}-labels-idx1-ubyte'):
        path = _find(folder, name, ('', '.gz'))
        if path is None:
            raise FileNotFoundError(f'Fashion-MNIST: {folder} has neither {name} nor {name}.gz: run '
                                    f'`python tools/misc/prepare_fashion_mnist.py` ({INSTALL_HINT})')
        paths.append(path)
    images, labels = _read_idx(paths[0], 2051, (28, 28)), _read_idx(paths[1], 2049, ())
    if len(images) != len(labels):
        raise ValueError(f'Fashion-MNIST: {paths[0]} holds {len(images)} images and {paths[1]} {len(labels)} '
                         'labels; prepare the folder again with `python tools/misc/prepare_fashion_mnist.py`')
    return images, labels.astype(np.int64)


def _missing_files(folder: str, suffixes: Tuple[str, ...] = ('',)) -> List[str]:
    """The idx files (unpacked names) of which ``folder`` holds no ``name + suffix`` for any ``suffix``."""
    return [name for name in UNPACKED_MD5 if _find(folder, name, suffixes) is None]


def holds_items(folder: str) -> bool:
    """Whether :func:`load_items` finds both splits in ``folder`` (each file unpacked or ``.gz``)."""
    return not _missing_files(folder, ('', '.gz'))


def check_prepared(data_root: str, setting: str = 'data_root') -> None:
    """FileNotFoundError, naming ``setting`` (the option or config key that gave ``data_root``), the missing
    files and the command that makes them, unless ``data_root`` holds the four unpacked idx files that
    mmpretrain's ``FashionMNIST`` reads."""
    missing = _missing_files(data_root)
    if missing:
        raise FileNotFoundError(f'{setting} {data_root} holds no prepared Fashion-MNIST ({", ".join(missing)} '
                                f'missing): run `python tools/misc/prepare_fashion_mnist.py --out {data_root}` '
                                f'({INSTALL_HINT})')


def expected_md5() -> Dict[str, str]:
    """{``.gz`` file name: md5}, mmpretrain's own list (``FashionMNIST.train_list + test_list``)."""
    from mmpretrain.datasets import FashionMNIST
    return dict(FashionMNIST.train_list + FashionMNIST.test_list)


def _md5(path: str) -> str:
    with open(path, 'rb') as f:
        return hashlib.file_digest(f, 'md5').hexdigest()


def prepare_fashion_mnist(src: str, dst: str) -> List[str]:
    """Check the four ``.gz`` files in ``src`` against mmpretrain's md5 list (or, for recompressed
    archives, their unpacked content against ``UNPACKED_MD5``) and unpack them into ``dst`` (the
    ``data_root`` of ``configs/_base_/datasets/fashion_mnist.py``). Files already unpacked and checked are
    kept; each is written through a temporary name, so an interrupted run leaves no half file. Returns
    the unpacked paths. Raises FileNotFoundError (missing file, with how to get it) or ValueError (md5
    mismatch, naming the file and the sums)."""
    missing = [name for name in expected_md5() if not os.path.isfile(os.path.join(src, name))]
    if missing:
        raise FileNotFoundError(f'Fashion-MNIST: {", ".join(missing)} not found in {src}: {INSTALL_HINT}')
    os.makedirs(dst, exist_ok=True)
    written = []
    for name, md5 in expected_md5().items():
        archive = os.path.join(src, name)
        target = os.path.join(dst, name[:-len('.gz')])
        unpacked_md5 = UNPACKED_MD5[os.path.basename(target)]
        if not (os.path.isfile(target) and _md5(target) == unpacked_md5):
            got = _md5(archive)
            tmp = target + '.tmp'
            with gzip.open(archive, 'rb') as fin, open(tmp, 'wb') as fout:
                shutil.copyfileobj(fin, fout)
            if got != md5 and _md5(tmp) != unpacked_md5:
                os.remove(tmp)
                raise ValueError(f'Fashion-MNIST: {archive} has md5 {got} (mmpretrain expects {md5}) and does not '
                                 f'unpack to the original content (md5 {unpacked_md5}): the file is damaged or '
                                 'not the original; fetch it again')
            os.replace(tmp, target)
        written.append(target)
    return written
