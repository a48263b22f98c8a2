"""Detection transfer of a learned structure: a structure-study classifier's backbone in a RetinaNet,
initialised from the classifier's weights (checked), end to end through projects/studies/recipe_study.py."""
import os

import pytest
import torch
from conftest import ROOT
from mmengine.config import Config

import mmcompact  # noqa: F401
from mmcompact.structure import check_backbone_initialised, transfer_backbone
from mmcompact.utils import build_model

DETECTOR = os.path.join(ROOT, 'projects', 'studies', 'configs', 'structure_det', 'retinanet_resnet18c_structured.py')


def perturbed(key: str, value: torch.Tensor) -> torch.Tensor:
    """A trained-looking value, unlike any fresh initialisation (variances stay positive)."""
    if not value.is_floating_point():
        return value
    if key.endswith('running_var'):
        return value * (1 + torch.rand_like(value))
    return value + 0.1 * torch.randn_like(value)


def write_classifier(method_dir, seeds, layer4_width: int, distilled: bool = False) -> None:
    """A structure study's method folder: student.py (ResNetV1c-18 with a narrowed last stage) and, per seed,
    a trained checkpoint named by last_checkpoint (keys under student. when ``distilled``, as KD runs write)."""
    cfg = Config.fromfile(os.path.join(ROOT, 'projects', 'studies', 'configs', 'resnet18c_32px_cls.py'))
    cfg.model.backbone = dict(type='mmcompact.StructuredBackbone', backbone=cfg.model.backbone, blocks=dict(
        layer4=dict(type='BasicResidual', in_channels=256, out_channels=layer4_width, stride=2, width_ratio=1.0,
                    num_blocks=1)))
    cfg.model.head.in_channels = layer4_width
    os.makedirs(method_dir, exist_ok=True)
    cfg.dump(os.path.join(method_dir, 'student.py'))
    for seed in seeds:
        torch.manual_seed(seed)
        state = build_model(cfg).state_dict()
        state = {('student.' if distilled else '') + k: perturbed(k, v) for k, v in state.items()}
        path = os.path.join(method_dir, f'seed{seed}', 'epoch_1.pth')
        os.makedirs(os.path.dirname(path))
        torch.save(dict(state_dict=state), path)
        with open(os.path.join(method_dir, f'seed{seed}', 'last_checkpoint'), 'w') as f:
            f.write(path)


@pytest.mark.parametrize('distilled', [False, True])
def test_transferred_backbone_loads_every_classifier_weight(tmp_path, distilled):
    write_classifier(str(tmp_path), [0], layer4_width=96, distilled=distilled)
    checkpoint = str(tmp_path / 'seed0' / 'epoch_1.pth')
    backbone, channels = transfer_backbone(str(tmp_path / 'student.py'), checkpoint, out_indices=(0, 1, 2, 3))
    assert channels == [64, 128, 256, 96]
    assert backbone['backbone']['type'] == 'mmpretrain.ResNetV1c'  # builds under mmdet's default scope
    cfg = Config.fromfile(DETECTOR)
    cfg.model.backbone, cfg.model.neck.in_channels = backbone, channels
    detector = build_model(cfg)
    with pytest.raises(ValueError, match='not initialised'):
        check_backbone_initialised(detector.backbone, checkpoint)
    detector.init_weights()
    check_backbone_initialised(detector.backbone, checkpoint)
    with torch.no_grad():
        assert [f.shape[1] for f in detector.neck(detector.backbone(torch.zeros(1, 3, 64, 64)))] == [64] * 4


def test_det_transfer_study_runs_every_method_and_names_a_missing_seed(tmp_path):
    """A missing classifier is a one-line error before any work; the study runs every method at toy size."""
    from conftest import run_tool
    structure = tmp_path / 'structure'
    write_classifier(str(structure / '4M' / 'learned'), [0], layer4_width=96, distilled=True)
    write_classifier(str(structure / '4M' / 'uniform'), [0], layer4_width=128, distilled=True)
    argv = ['projects/studies/recipe_study.py', '--task', 'det-transfer', '--structure-dir', str(structure),
            '--budget', '4M',
            '--work-dir', str(tmp_path / 'study'), '--iters', '2', '--teacher-iters', '2', '--num-train', '8',
            '--num-val', '4', '--jobs', '1']
    missing = run_tool(*argv, '--seeds', '0', '1')
    assert missing.returncode == 1 and 'seed 1' in missing.stderr and 'learned' in missing.stderr
    assert not (tmp_path / 'study').exists()  # checked before anything is written
    result = run_tool(*argv, '--seeds', '0')
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    table = (tmp_path / 'study' / 'results.md').read_text()
    for row in ('| learned |', '| uniform |', '| teacher |'):
        assert row in table, row
    student = Config.fromfile(str(tmp_path / 'study' / 'students' / 'learned' / 'seed0.py'))
    assert student.model.neck.in_channels == [64, 128, 256, 96]
    assert student.model.backbone.backbone.init_cfg.checkpoint == str(structure / '4M' / 'learned' / 'seed0' /
                                                                      'epoch_1.pth')
