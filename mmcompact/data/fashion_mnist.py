"""Fashion-MNIST (Zalando, 60,000 train / 10,000 test 28x28 grayscale images, 10 classes) prepared for
mmpretrain's ``FashionMNIST`` dataset, which reads the four unpacked idx files from ``data_root``."""
import gzip
import hashlib
import os
import shutil
from typing import Dict, List

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


def check_prepared(data_root: str, setting: str = 'data_root') -> None:
    """FileNotFoundError, naming ``setting`` (the option or config key that gave ``data_root``), the missing
    files and the command that makes them, unless ``data_root`` holds the four unpacked idx files that
    mmpretrain's ``FashionMNIST`` reads."""
    missing = [name for name in UNPACKED_MD5 if not os.path.isfile(os.path.join(data_root, name))]
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
