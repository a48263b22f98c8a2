"""Building a config's model the way MMEngine's Runner does."""
import torch
from conftest import ROOT
from mmengine.config import Config

import mmcompact  # noqa: F401
from mmcompact.utils import build_model, model_config

MEAN, STD = [123.675, 116.28, 103.53], [58.395, 57.12, 57.375]


def test_top_level_data_preprocessor_goes_into_the_model_as_the_runner_puts_it():
    """mmpretrain configs keep mean/std at the top level; a model built without them sees 0-255 pixels
    (the bug that gave the structure search unnormalised teacher features)."""
    cfg = Config.fromfile(f'{ROOT}/projects/studies/configs/resnet18c_32px_cls.py')
    assert 'data_preprocessor' in cfg and 'data_preprocessor' not in cfg.model
    model = build_model(cfg)
    image = torch.full((3, 8, 8), 255, dtype=torch.uint8)
    inputs = model.data_preprocessor(dict(inputs=[image]), False)['inputs']
    assert torch.allclose(inputs[0, :, 0, 0], (255 - torch.tensor(MEAN)) / torch.tensor(STD), atol=1e-5)
    assert 'data_preprocessor' not in cfg.model  # the config itself is left as it was


def test_a_models_own_data_preprocessor_wins():
    cfg = Config(dict(model=dict(type='X', data_preprocessor=dict(mean=[1.0])), data_preprocessor=dict(mean=[2.0])))
    assert model_config(cfg)['data_preprocessor']['mean'] == [1.0]
