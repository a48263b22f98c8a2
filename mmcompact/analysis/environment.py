"""What a result was measured with: the versions of the packages that decide a run's numbers bit for bit."""
from importlib.metadata import PackageNotFoundError, version
from typing import Sequence

# Training numerics (torch, the OpenMMLab stack) and the synthetic data (numpy draws it, pillow renders it,
# opencv decodes it): a change to any of them can move a same-seed run.
RESULT_PACKAGES = ('torch', 'torchvision', 'mmcv', 'mmengine', 'mmpretrain', 'mmdet', 'numpy', 'pillow',
                   'opencv-python')


def package_versions(names: Sequence[str] = RESULT_PACKAGES) -> str:
    """``'torch 2.14.1, numpy 2.4.6, ...'`` for ``names`` (a missing package reads 'not installed')."""
    def one(name):
        try:
            return version(name)
        except PackageNotFoundError:
            return 'not installed'
    return ', '.join(f'{name} {one(name)}' for name in names)
