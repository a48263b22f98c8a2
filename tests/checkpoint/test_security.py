"""The same crafted pickle (it would create a file when unpickled) through every load path of mmcompact:
each refuses it with UnsafeCheckpointError's message and nothing runs."""
import os

import pytest
import torch
from conftest import ROOT, make_image_folder

import mmcompact  # noqa: F401
from mmcompact.checkpoint import UnsafeCheckpointError
from mmcompact.utils import build_model, load_config

STUDY = os.path.join(ROOT, 'projects', 'studies', 'configs')


class Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}', ))


@pytest.fixture
def evil(tmp_path):
    """(path of the crafted checkpoint, marker file that would prove it ran)."""
    marker = tmp_path / 'pwned'
    path = tmp_path / 'evil.pth'
    torch.save({'state_dict': {}, 'meta': Payload(marker), 'bank': {}}, str(path))
    return path, marker


def _refused(result, marker):
    code, _, err = result
    assert code != 0 and 'refused to load' in err and 'system' in err, err[-1500:]
    assert not marker.exists()


@pytest.mark.parametrize('tool', ['fold', 'export_student', 'convert', 'test', 'train_resume', 'train_load_from'])
def test_every_tool_refuses_a_malicious_checkpoint(tool, evil, tmp_path, cli):
    path, marker = evil
    data = make_image_folder(tmp_path / 'data', per_class=2, size=64)
    plain = os.path.join(STUDY, 'ghostnetv3-0.5x_synthetic_cls.py')
    data_options = ['--cfg-options'] + [f'{k}_dataloader.dataset.data_root={data}' for k in ('train', 'val', 'test')]
    argv = {
        'fold': ('tools/deployment/fold.py', plain, path, tmp_path / 'out.pth'),
        'export_student': ('tools/deployment/export_student.py', os.path.join(STUDY,
                                                                              'ghostnetv3-0.5x_kd_synthetic_cls.py'),
                                                                              path,
                           tmp_path / 'export'),
        'convert': ('tools/model_converters/convert_ghostnetv3.py', path, tmp_path / 'out.pth'),
        'test': ('tools/test.py', plain, path, '--work-dir', tmp_path / 'wd', *data_options),
        'train_resume': ('tools/train.py', plain, '--work-dir', tmp_path / 'wd', '--resume', path, *data_options),
        'train_load_from': ('tools/train.py', plain, '--work-dir', tmp_path / 'wd', *data_options, f'load_from={path}'),
    }[tool]
    _refused(cli(*argv), marker)


def test_distiller_refuses_a_malicious_teacher_checkpoint(evil):
    path, marker = evil
    cfg = load_config(os.path.join(STUDY, 'ghostnetv3-0.5x_kd_synthetic_cls.py'),
                      {'model.teacher_checkpoint': str(path)})
    with pytest.raises(UnsafeCheckpointError, match='system'):
        build_model(cfg)
    assert not marker.exists()


def test_structure_search_refuses_a_malicious_state(evil, tmp_path):
    from mmcompact.structure.search import STATE_FILE, BlockwiseDistillation
    path, marker = evil
    work = tmp_path / 'search'
    work.mkdir()
    os.replace(path, work / STATE_FILE)
    search = BlockwiseDistillation.__new__(BlockwiseDistillation)
    search.work_dir = str(work)
    with pytest.raises(UnsafeCheckpointError, match='system'):
        search._load()
    assert not marker.exists()
