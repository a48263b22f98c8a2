import subprocess
import sys
import textwrap

import pytest
import torch
from conftest import ROOT, randomize_bn
from torch.nn.modules.batchnorm import _BatchNorm

from mmcompact.models import GhostNetV3
from mmcompact.reparam import RepConvBN, max_abs_diff, reparameterize_model
from mmcompact.utils import make_divisible

WIDTHS = (0.5, 0.75, 1.0, 1.3, 1.6)


def test_make_divisible_matches_the_official_rounding():
    assert [make_divisible(16 * w) for w in WIDTHS] == [8, 12, 16, 20, 24]
    assert make_divisible(960 * 1.3) == 1248 and make_divisible(72 * 0.25) == 20
    assert make_divisible(1) == 4


@pytest.mark.parametrize('width', WIDTHS)
def test_whole_backbone_folds_exactly_at_every_width(width):
    torch.manual_seed(0)
    model = randomize_bn(GhostNetV3(widen_factor=width, out_indices=(2, 4, 6, 9))).eval()
    x = torch.randn(2, 3, 96, 80)
    expected = model(x)
    model.switch_to_deploy()
    assert model.deploy
    assert not any(isinstance(m, RepConvBN) and not m.deploy for m in model.modules())
    assert max_abs_diff(expected, model(x)) <= 1e-5


def test_fold_is_exact_in_float64():
    # In double precision the only difference left is rounding: the fold math itself is exact.
    model = randomize_bn(GhostNetV3(widen_factor=1.0)).double().eval()
    x = torch.randn(1, 3, 64, 64, dtype=torch.float64)
    expected = model(x)
    model.switch_to_deploy()
    assert max_abs_diff(expected, model(x)) <= 1e-11


def test_deploy_constructed_backbone_loads_folded_state_strictly():
    model = randomize_bn(GhostNetV3(widen_factor=0.5)).eval()
    x = torch.randn(1, 3, 64, 64)
    expected = model(x)
    reparameterize_model(model)
    deployed = GhostNetV3(widen_factor=0.5, deploy=True).eval()
    assert deployed.deploy
    deployed.load_state_dict(model.state_dict(), strict=True)
    assert max_abs_diff(expected, deployed(x)) <= 1e-5


def test_feature_maps_strides_and_channels_for_detection():
    model = GhostNetV3(out_indices=(-1, 2, 4, 6, 9)).eval()
    assert model.out_channels == (16, 24, 40, 112, 960)
    outs = model(torch.randn(1, 3, 256, 320))
    assert [o.shape[1] for o in outs] == list(model.out_channels)
    assert [(256 // o.shape[2], 320 // o.shape[3]) for o in outs] == [(2, 2), (4, 4), (8, 8), (16, 16),
                                                                     (32, 32)]


@pytest.mark.parametrize('shape', [(1, 3, 97, 131), (1, 3, 33, 33), (2, 3, 64, 200)])
def test_odd_non_square_inputs_and_batch_one(shape):
    model = randomize_bn(GhostNetV3(widen_factor=0.5, out_indices=(2, 4, 6, 9))).eval()
    x = torch.randn(*shape)
    expected = model(x)
    assert expected[0].shape[0] == shape[0] and expected[-1].dim() == 4
    reparameterize_model(model)
    assert max_abs_diff(expected, model(x)) <= 1e-5


@pytest.mark.parametrize('channels_last', [False, True])
@pytest.mark.parametrize('size', [(64, 64), (97, 66)])  # exact 2x gates, and gates upsampled to odd sizes
def test_one_pass_inference_output_is_bitwise_the_concatenated_one(monkeypatch, size, channels_last):
    """At inference of large maps a ghost module writes concat, gate product and shortcut sum into one
    tensor (forced here for every map): the same operations, so the same bits as the autograd path."""
    from mmcompact.models.backbones import ghostnetv3
    monkeypatch.setattr(ghostnetv3, 'ONE_PASS_MIN_ELEMENTS', 0)
    layout = torch.channels_last if channels_last else torch.contiguous_format
    model = reparameterize_model(randomize_bn(GhostNetV3(widen_factor=0.5, out_indices=(2, 4, 6, 9))).eval())
    model = model.to(memory_format=layout)
    x = torch.randn(2, 3, *size).to(memory_format=layout)
    concatenations = []
    cat = torch.cat
    monkeypatch.setattr(torch, 'cat', lambda *a, **k: concatenations.append(1) or cat(*a, **k))
    with torch.no_grad():
        one_pass = model(x)
    assert not concatenations  # every ghost module took the one-pass path
    concatenated = model(x)  # grad enabled: the concatenating path
    assert len(concatenations) == 32  # 16 blocks x 2 ghost modules
    assert all(torch.equal(a, b.detach()) for a, b in zip(one_pass, concatenated))
    # an odd number of output channels: the cheap half is cut to fit, with and without gate and residual
    module = ghostnetv3.GhostModuleV3(6, 7, dict(type='ReLU'), True, 3, dict(type='BN'), False).eval()
    x, residual = torch.randn(1, 6, 10, 12), torch.randn(1, 7, 10, 12)
    for dfc in (module.dfc, None):
        module.dfc = dfc
        expected = module(x, residual)
        with torch.no_grad():
            assert torch.equal(module(x, residual), expected.detach())
            assert torch.equal(module(x), module(x, torch.zeros_like(residual)))


def test_frozen_stages_and_norm_eval():
    model = GhostNetV3(widen_factor=0.5, frozen_stages=2, norm_eval=True)
    model.train()
    frozen = [model.stem, model.stages[0], model.stages[1]]
    assert all(not p.requires_grad for m in frozen for p in m.parameters())
    assert all(p.requires_grad for p in model.stages[2].parameters())
    assert all(not m.training for m in model.modules() if isinstance(m, _BatchNorm))
    plain = GhostNetV3(widen_factor=0.5).train()
    assert all(m.training for m in plain.modules() if isinstance(m, _BatchNorm))


@pytest.mark.parametrize('kwargs, message', [
    (dict(widen_factor=0), 'widen_factor must be a number in'),
    (dict(out_indices=(3, 10)), r'out_indices .* contains \[10\]'),
    (dict(frozen_stages=12), 'frozen_stages must be in'),
])
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        GhostNetV3(**kwargs)


def test_pretrained_init_cfg_loads_a_classifier_checkpoint_with_prefix(tmp_path):
    from mmcompact.checkpoint import save_atomic
    source = randomize_bn(GhostNetV3(widen_factor=0.5))
    path = save_atomic({'state_dict': {f'backbone.{k}': v for k, v in source.state_dict().items()}},
                       str(tmp_path / 'cls.pth'))
    model = GhostNetV3(widen_factor=0.5,
                       init_cfg=dict(type='Pretrained', checkpoint=path, prefix='backbone.'))
    model.init_weights()
    loaded = model.state_dict()
    for key, value in source.state_dict().items():
        assert torch.equal(loaded[key], value), key


REGISTRATION_SCRIPT = textwrap.dedent('''
    import sys, torch
    from mmengine.config import Config
    from mmengine.registry import MODELS, init_default_scope
    cfg = Config.fromfile(sys.argv[1])
    init_default_scope(cfg.default_scope)
    model = MODELS.build(cfg.model).eval()
    out = model(torch.randn(1, 3, 64, 64), mode='tensor')
    print(type(model).__name__, type(model.backbone).__name__)
''')


@pytest.mark.parametrize('config, expected', [
    ('configs/ghostnetv3/ghostnetv3-0.5x_8xb128_in1k.py', 'ImageClassifier GhostNetV3'),
    ('configs/detection/retinanet_ghostnetv3-1.0x_fpn_1x_coco.py', 'RetinaNet GhostNetV3'),
])
def test_stock_configs_reach_mmcompact_through_custom_imports(config, expected):
    # A fresh interpreter that never imports mmcompact itself: only the config's custom_imports do.
    result = subprocess.run([sys.executable, '-c', REGISTRATION_SCRIPT, config], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert expected in result.stdout


def test_classification_head_matches_the_official_head():
    from mmcompact.models import GhostNetV3ClsHead
    head = GhostNetV3ClsHead(num_classes=10, in_channels=32, hidden_channels=64).eval()
    feats = torch.randn(3, 32)
    manual = head.fc(torch.relu(head.conv_head(feats[:, :, None, None])).flatten(1))
    assert torch.allclose(head((feats, )), manual)
    assert head.conv_head.weight.shape == (64, 32, 1, 1)
