"""Package metadata for mmcompact (``pip install -e .``)."""
import re
import shutil
from pathlib import Path

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).parent


class BuildPyWithConfigs(build_py):
    """Ship configs/ inside the package as ``mmcompact/.mim/configs`` with ``.mim/model-index.yml`` (the
    layout of mmdet and mmpretrain), so that ``_base_ = 'mmcompact::distill/...'`` resolves through MMEngine
    from any install. In the source tree (editable installs) ``mmcompact/.mim/configs`` is a symlink."""

    def run(self):
        super().run()
        mim = Path(self.build_lib) / 'mmcompact' / '.mim'
        if mim.exists() or mim.is_symlink():
            shutil.rmtree(mim)
        shutil.copytree(HERE / 'configs', mim / 'configs', ignore=shutil.ignore_patterns('__pycache__'))
        shutil.copy(HERE / 'mmcompact' / '.mim' / 'model-index.yml', mim / 'model-index.yml')

VERSION = re.search(r"__version__ = '([^']+)'",
                    (HERE / 'mmcompact' / 'version.py').read_text()).group(1)

setup(
    name='mmcompact',
    version=VERSION,
    description='Re-parameterization, distillation and structure learning for compact CNNs '
                'on the OpenMMLab stack',
    long_description=(HERE / 'README.md').read_text() if (HERE / 'README.md').exists() else '',
    long_description_content_type='text/markdown',
    packages=find_packages(include=['mmcompact', 'mmcompact.*']),
    python_requires='>=3.9',
    install_requires=[
        'torch>=2.6',
        'torchvision',
        'mmengine==0.10.7',
        'mmcv==2.1.0',
        'mmdet==3.3.0',
        'mmpretrain==1.2.0',
        'pycocotools',
        'numpy',
        'matplotlib',
        'tqdm',
    ],
    extras_require={
        'deploy': ['onnx', 'onnxruntime', 'onnxscript'],  # tools/deployment/export_onnx.py
        'tests': ['pytest', 'pytest-xdist', 'hypothesis', 'timm==1.0.31', 'onnx', 'onnxruntime', 'onnxscript',
                  'import-linter'],
    },
    license='Apache-2.0',
    cmdclass={'build_py': BuildPyWithConfigs},
)
