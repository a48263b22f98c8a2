"""Configs ship with the package: from a non-editable install, a user's config outside the source tree
inherits ``mmcompact::`` configs, and the teacher and student configs they name resolve too."""
import glob
import os
import shutil
import subprocess
import sys

import pytest
from conftest import ROOT

DISTILL_CONFIGS = sorted(os.path.relpath(p, os.path.join(ROOT, 'configs'))
                         for p in glob.glob(os.path.join(ROOT, 'configs', 'distill', '*.py')))

BUILD_ALL = """
import sys
import mmcompact
from mmcompact.utils import build_model, load_config
from mmcompact.distill import Distiller
assert mmcompact.__file__.startswith(sys.argv[1]), mmcompact.__file__  # the installed copy, not the source
for config in sys.argv[2:]:
    model = build_model(load_config(config))
    assert isinstance(model, Distiller), type(model)
    print('built', config, type(model.student).__name__, type(model.teacher).__name__)
"""


@pytest.fixture(scope='module')
def installed(tmp_path_factory):
    """mmcompact built as a wheel from a copy of the source and pip-installed into a throw-away folder."""
    tmp = tmp_path_factory.mktemp('packaging')
    source = tmp / 'source'
    source.mkdir()
    for name in ('setup.py', 'README.md'):
        shutil.copy(os.path.join(ROOT, name), source / name)
    shutil.copytree(os.path.join(ROOT, 'configs'), source / 'configs')
    shutil.copytree(os.path.join(ROOT, 'mmcompact'), source / 'mmcompact', symlinks=True,
                    ignore=shutil.ignore_patterns('__pycache__'))
    pip = [sys.executable, '-m', 'pip', '--disable-pip-version-check', '-q']
    subprocess.run(pip + ['wheel', '--no-deps', '--no-build-isolation', '-w', str(tmp / 'dist'), str(source)],
                   check=True, capture_output=True)
    wheel = glob.glob(str(tmp / 'dist' / 'mmcompact-*.whl'))[0]
    subprocess.run(pip + ['install', '--no-deps', '--target', str(tmp / 'site'), wheel], check=True,
                   capture_output=True)
    return tmp / 'site'


def test_the_wheel_ships_configs_and_the_model_index(installed):
    mim = installed / 'mmcompact' / '.mim'
    assert (mim / 'model-index.yml').is_file() and not (mim / 'configs').is_symlink()
    assert (mim / 'configs' / 'distill' / 'metafile.yml').is_file()
    assert len(list((mim / 'configs').rglob('*.py'))) == len(glob.glob(os.path.join(ROOT, 'configs', '**', '*.py'),
                                                                        recursive=True))


def test_user_configs_inherit_every_distill_config_from_an_installed_package(installed, tmp_path):
    users = []
    for config in DISTILL_CONFIGS:
        path = tmp_path / f'my_{os.path.basename(config)}'
        path.write_text(f"_base_ = 'mmcompact::{config}'\nmodel = dict(teacher_checkpoint=None)\n")
        users.append(str(path))
    result = subprocess.run([sys.executable, '-c', BUILD_ALL, str(installed), *users], cwd=tmp_path,
                            capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(installed)))
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count('built') == len(DISTILL_CONFIGS) >= 8


def test_mmcompact_is_registered_as_a_config_package():
    from mmengine.config.utils import MODULE2PACKAGE

    import mmcompact
    assert MODULE2PACKAGE['mmcompact'] == 'mmcompact'
    assert any('MODULE2PACKAGE' in change for change in mmcompact.GLOBAL_CHANGES)
