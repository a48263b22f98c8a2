"""mmcompact.Reparameterized: existing backbones trained with re-param branches, folded back into
exactly themselves (module types, state-dict keys, outputs)."""
import copy

import pytest
import torch
from conftest import randomize_bn
from mmengine.registry import MODELS, DefaultScope

from mmcompact.checkpoint import save_atomic
from mmcompact.reparam import FoldError, RepConvBNPair, foldable_modules, max_abs_diff, reparameterize_model

BACKBONES = {
    'mmdet MobileNetV2': ('mmdet', dict(type='MobileNetV2', out_indices=(2, 4, 7))),
    'mmdet ResNet-18': ('mmdet', dict(type='ResNet', depth=18, out_indices=(0, 1, 2, 3))),
    'mmpretrain ShuffleNetV2': ('mmpretrain', dict(type='ShuffleNetV2')),
    'mmpretrain MobileNetV2': ('mmpretrain', dict(type='MobileNetV2')),
}


def build(scope, cfg, seed=0):
    with DefaultScope.overwrite_default_scope(scope):
        torch.manual_seed(seed)
        return MODELS.build(copy.deepcopy(cfg))


def relative_diff(a, b):
    scale = max(o.abs().max().item() for o in a)
    return max_abs_diff(a, b) / scale


@pytest.mark.parametrize('scope, backbone', BACKBONES.values(), ids=BACKBONES.keys())
def test_fold_back_into_exactly_the_original_backbone(scope, backbone):
    # (mmdet/mmpretrain backbones' train() returns None: no chaining of .eval())
    plain = build(scope, backbone)
    plain.eval()
    rep = build(scope, dict(type='mmcompact.Reparameterized', backbone=backbone, input_shape=(1, 3, 64, 64)))
    rep.eval()
    assert isinstance(rep, type(plain)) and type(rep).__name__ == f'Reparameterized{type(plain).__name__}'
    assert len(foldable_modules(rep)) >= 20
    x = torch.randn(2, 3, 64, 64)
    assert max_abs_diff(plain(x), rep(x)) == 0  # new branches start silent: the same function
    branch = next(m for m in rep.modules() if isinstance(m, RepConvBNPair))
    assert len(branch.branches) == 3
    # gradients reach the new branches (their BN scales start at zero, so through them first)
    rep.train()
    sum(o.sum() for o in rep(x)).backward()
    assert branch.branches[2].bn.weight.grad is not None and branch.branches[2].bn.weight.grad.abs().sum() > 0
    rep.zero_grad()
    randomize_bn(rep)  # as after training: every branch contributes
    rep.eval()
    expected = rep(x)
    reparameterize_model(rep)
    # float32 rounding through 20-56 random (untrained) layers; exactness itself: the float64 test below
    assert relative_diff(expected, rep(x)) <= 5e-5
    # every module folded back to its original type (the top one keeps its ReparameterizedInit mixin)
    assert [type(m) for m in rep.modules()][1:] == [type(m) for m in plain.modules()][1:]
    assert list(rep.state_dict()) == list(plain.state_dict())
    plain.load_state_dict(rep.state_dict(), strict=True)
    assert max_abs_diff(plain(x), rep(x)) == 0


def test_fold_back_is_exact_in_float64():
    scope, backbone = BACKBONES['mmpretrain MobileNetV2']
    rep = build(scope, dict(type='mmcompact.Reparameterized', backbone=backbone, input_shape=(1, 3, 64, 64)))
    randomize_bn(rep)
    rep.double()
    rep.eval()
    x = torch.randn(1, 3, 64, 64, dtype=torch.float64)
    expected = rep(x)
    reparameterize_model(rep)
    assert relative_diff(expected, rep(x)) <= 1e-12


def test_deploy_builds_the_plain_backbone_and_include_exclude_select_convs():
    scope, backbone = BACKBONES['mmdet ResNet-18']
    deployed = build(scope, dict(type='mmcompact.Reparameterized', backbone=backbone, deploy=True))
    assert foldable_modules(deployed) == []
    only_layer1 = build(scope, dict(type='mmcompact.Reparameterized', backbone=backbone,
                                    include=['layer1.*'], exclude=['layer1.1.*'], input_shape=(1, 3, 64, 64)))
    assert foldable_modules(only_layer1) == ['layer1.0.conv1', 'layer1.0.conv2']
    with pytest.raises(ValueError, match='nothing to re-parameterize'):
        build(scope, dict(type='mmcompact.Reparameterized', backbone=backbone, include=['nope.*'],
                          input_shape=(1, 3, 64, 64)))


def test_pretrained_weights_load_through_init_weights(tmp_path):
    scope, backbone = BACKBONES['mmdet MobileNetV2']
    pretrained = randomize_bn(build(scope, backbone, seed=1))
    pretrained.eval()
    path = save_atomic({'state_dict': pretrained.state_dict()}, str(tmp_path / 'mbv2.pth'))
    rep = build(scope, dict(type='mmcompact.Reparameterized', input_shape=(1, 3, 64, 64),
                            backbone=dict(backbone, init_cfg=dict(type='Pretrained', checkpoint=path))))
    rep.init_weights()
    rep.eval()
    x = torch.randn(1, 3, 64, 64)
    assert len(foldable_modules(rep)) >= 20
    assert relative_diff(pretrained(x), rep(x)) <= 1e-6  # starts from the pretrained function


@pytest.mark.parametrize('name', ['mmpretrain MobileNetV2', 'mmdet ResNet-18'])
def test_init_weights_of_the_model_around_it(name, tmp_path):
    """What the runner does: build the optimizer, then ``init_weights`` on the classifier or detector. The
    backbone ends re-parameterized, starting from its initialised (here: pretrained) function, with the same
    parameter objects (replaced ones would be outside the optimizer: never trained), and mmengine's check
    of the parameters (it used to assert 'Find a new Parameter') passes."""
    scope, backbone = BACKBONES[name]
    pretrained = randomize_bn(build(scope, backbone, seed=1))
    pretrained.eval()
    path = save_atomic({'state_dict': pretrained.state_dict()}, str(tmp_path / 'backbone.pth'))
    rep = dict(type='mmcompact.Reparameterized', input_shape=(1, 3, 64, 64),
               backbone=dict(backbone, init_cfg=dict(type='Pretrained', checkpoint=path)))
    if scope == 'mmpretrain':
        model = build(scope, dict(type='ImageClassifier', backbone=rep, neck=dict(type='GlobalAveragePooling'),
                                  head=dict(type='LinearClsHead', num_classes=3, in_channels=1280)))
    else:
        model = build(scope, dict(type='RetinaNet', data_preprocessor=dict(type='DetDataPreprocessor'),
                                  backbone=rep, neck=dict(type='FPN', in_channels=[64, 128, 256, 512],
                                                          out_channels=16, num_outs=4),
                                  bbox_head=dict(type='RetinaHead', num_classes=3, in_channels=16,
                                                 feat_channels=16, stacked_convs=1,
                                                 anchor_generator=dict(type='AnchorGenerator', octave_base_scale=4,
                                                                       scales_per_octave=1, ratios=[1.0],
                                                                       strides=[4, 8, 16, 32]),
                                                 bbox_coder=dict(type='DeltaXYWHBBoxCoder'))))
    params = list(model.parameters())
    model.init_weights()
    assert all(a is b for a, b in zip(params, model.parameters())) and len(params) == len(list(model.parameters()))
    assert not any(hasattr(m, '_params_init_info') for m in model.modules())  # mmengine's cleanup reached all
    model.eval()
    assert len(foldable_modules(model.backbone)) >= 10
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert relative_diff(pretrained(x), model.backbone(x)) <= 1e-5


def test_a_model_in_a_detector_folds_with_the_fold_tool_mechanism():
    from mmcompact.deploy import fold_checked
    scope = 'mmdet'
    detector = build(scope, dict(
        type='RetinaNet',
        data_preprocessor=dict(type='DetDataPreprocessor', mean=[0, 0, 0], std=[1, 1, 1]),
        backbone=dict(type='mmcompact.Reparameterized', input_shape=(1, 3, 64, 64),
                      backbone=dict(type='MobileNetV2', out_indices=(2, 4, 7))),
        neck=dict(type='FPN', in_channels=[32, 96, 1280], out_channels=32, start_level=0, num_outs=3),
        bbox_head=dict(type='RetinaHead', num_classes=3, in_channels=32, feat_channels=32, stacked_convs=1,
                       anchor_generator=dict(type='AnchorGenerator', octave_base_scale=4,
                                             scales_per_octave=1, ratios=[1.0], strides=[8, 16, 32]),
                       bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[.0, .0, .0, .0],
                                       target_stds=[1.0, 1.0, 1.0, 1.0]),
                       loss_cls=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25,
                                     loss_weight=1.0),
                       loss_bbox=dict(type='L1Loss', loss_weight=1.0)),
        test_cfg=dict(nms_pre=100, score_thr=0.0, nms=dict(type='nms', iou_threshold=0.5),
                      max_per_img=10)))
    randomize_bn(detector).eval()
    x = torch.randn(1, 3, 96, 128)
    with torch.no_grad():
        scale = max(t.abs().max().item() for level in detector(x) for t in level)
    folded, check = fold_checked(detector, x, tolerance=1e-5 * scale)
    assert check['max_abs_diff'] / scale <= 1e-5 and foldable_modules(folded) == []


def test_training_mode_fold_is_refused():
    scope, backbone = BACKBONES['mmpretrain ShuffleNetV2']
    rep = build(scope, dict(type='mmcompact.Reparameterized', backbone=backbone, input_shape=(1, 3, 64, 64)))
    rep.train()
    with pytest.raises(FoldError, match=r'model.eval\(\)'):
        reparameterize_model(rep)


def test_fold_tool_on_a_reparameterized_mmpretrain_classifier(tmp_path, cli):
    import os

    from conftest import ROOT

    from mmcompact.checkpoint import safe_load
    from mmcompact.utils import build_model, load_config
    config = os.path.join(ROOT, 'configs', 'reparam', 'mobilenet-v2-reparam_8xb32_in1k.py')
    model = randomize_bn(build_model(load_config(config)))
    checkpoint = save_atomic({'state_dict': model.state_dict()}, str(tmp_path / 'trained.pth'))
    code, stdout, stderr = cli('tools/deployment/fold.py', config, checkpoint, tmp_path / 'deploy.pth', '--shape', 64,
                               64,
                               '--tolerance', 1e-3)
    assert code == 0, stderr
    assert 'model.backbone' in stdout
    plain_config = tmp_path / 'plain.py'
    plain_config.write_text("_base_ = 'mmpretrain::mobilenet_v2/mobilenet-v2_8xb32_in1k.py'\n")
    plain = build_model(load_config(str(plain_config)))
    plain.load_state_dict(safe_load(str(tmp_path / 'deploy.pth'))['state_dict'], strict=True)
    plain.eval()
    model.eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected = model(x)
        assert max_abs_diff(expected, plain(x)) / expected.abs().max() <= 5e-5
