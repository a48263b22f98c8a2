"""The fused training path of 1x1 re-param branches (moment fusion) is the same math as separate branches:
outputs, gradients of input and every parameter, and BatchNorm running statistics, within float rounding."""
import copy

import pytest
import torch

from mmcompact.models.backbones.ghostnetv3 import GhostNetV3
from mmcompact.reparam import RepConvBN, set_moment_fusion
from mmcompact.reparam.moments import fused_branches


def _pair(cin, cout, branches=3, momentum=0.1, seed=0):
    torch.manual_seed(seed)
    separate = RepConvBN(cin, cout, 1, num_branches=branches, moment_fusion=False)
    for m in separate.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            torch.nn.init.uniform_(m.weight, 0.5, 1.5)
            torch.nn.init.uniform_(m.bias, -0.5, 0.5)
            m.momentum = momentum
    fused = copy.deepcopy(separate)
    fused.moment_fusion = True
    return separate.train(), fused.train()


def _assert_close(a, b, what):
    scale = a.abs().max().clamp_min(1e-6)
    assert ((a - b).abs().max() / scale) < 2e-5, what


@pytest.mark.parametrize('cin,cout,branches,momentum', [(8, 12, 3, 0.1), (16, 8, 2, None), (5, 7, 4, 0.3)])
def test_moment_fusion_matches_separate_branches(cin, cout, branches, momentum):
    separate, fused = _pair(cin, cout, branches, momentum)
    for step in range(3):  # running statistics accumulate over steps (cumulative average when momentum=None)
        x = (torch.randn(4, cin, 6, 5) * 2 + 1).relu().requires_grad_()
        x2 = x.detach().clone().requires_grad_()
        a, b = separate(x), fused(x2)
        _assert_close(a, b, 'output')
        grad = torch.randn_like(a)
        a.backward(grad)
        b.backward(grad)
        _assert_close(x.grad, x2.grad, 'input gradient')
        for (name, p), q in zip(separate.named_parameters(), fused.parameters()):
            _assert_close(p.grad, q.grad, name)
        for (name, buf), other in zip(separate.named_buffers(), fused.buffers()):
            if buf.is_floating_point():
                _assert_close(buf, other, name)
            else:
                assert torch.equal(buf, other), name


def test_moment_fusion_under_bf16_autocast_and_channels_last():
    separate, fused = _pair(8, 12)
    x = torch.randn(4, 8, 6, 6).to(memory_format=torch.channels_last)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        a, b = separate(x), fused(x)
    assert b.dtype == a.dtype == torch.bfloat16
    assert (a.float() - b.float()).abs().max() < 0.1  # bf16 rounding of the two convs differs
    for buf, other in zip(separate.buffers(), fused.buffers()):
        if buf.is_floating_point():
            assert (buf - other).abs().max() < 1e-2  # statistics in float32 on both sides (BN under autocast)


def test_auto_mode_uses_fusion_only_where_it_is_faster_and_never_in_eval_or_syncbn():
    wide_in = RepConvBN(48, 12, 1).train()  # Cin = 4 Cout: separate convs are cheaper
    narrow_in = RepConvBN(12, 24, 1).train()
    depthwise = RepConvBN(12, 12, 3, groups=12).train()
    assert not wide_in._fuse_moments() and narrow_in._fuse_moments() and not depthwise._fuse_moments()
    assert not narrow_in.eval()._fuse_moments()
    synced = torch.nn.SyncBatchNorm.convert_sync_batchnorm(copy.deepcopy(narrow_in)).train()
    assert not synced._fuse_moments()  # batch statistics span processes: not computable locally
    with pytest.raises(ValueError, match='moment_fusion'):
        RepConvBN(4, 4, 1, moment_fusion='yes')
    with pytest.raises(ValueError, match='more than 1 value per channel'):
        fused_branches(torch.randn(1, 12, 1, 1), narrow_in.branches)


def test_ghostnetv3_trains_the_same_with_and_without_fusion():
    """Whole network, float64 (in float32, rounding differences grow through 16 training-mode BN blocks)."""
    torch.manual_seed(0)
    separate = GhostNetV3(widen_factor=0.5, out_indices=(9, )).double()
    fused = copy.deepcopy(separate)
    assert set_moment_fusion(separate, False) > 0
    assert any(m._fuse_moments() for m in fused.modules() if isinstance(m, RepConvBN))
    x = torch.randn(2, 3, 64, 64, dtype=torch.float64)
    a, b = separate(x)[0], fused(x)[0]
    assert (a - b).abs().max() < 1e-9
    a.square().mean().backward()
    b.square().mean().backward()
    for (name, p), q in zip(separate.named_parameters(), fused.parameters()):
        assert (p.grad - q.grad).abs().max() <= 1e-7 * p.grad.abs().max() + 1e-12, name
    for (name, buf), other in zip(separate.named_buffers(), fused.buffers()):
        assert (buf.double() - other.double()).abs().max() < 1e-9, name


def test_moment_fusion_is_selectable_from_configs():
    from mmengine.config import Config

    from mmcompact.utils import build_model
    ghostnet = GhostNetV3(widen_factor=0.5, moment_fusion=False)
    assert all(m.moment_fusion is False for m in ghostnet.modules() if isinstance(m, RepConvBN))
    cfg = Config(dict(model=dict(
        type='mmcompact.Reparameterized', backbone=dict(type='mmpretrain.MobileNetV2', widen_factor=0.5),
        input_shape=(1, 3, 64, 64), moment_fusion=False)))
    backbone = build_model(cfg)
    backbone.init_weights()  # re-converts the pairs: the setting must survive
    reps = [m for m in backbone.modules() if isinstance(m, RepConvBN)]
    assert reps and all(m.moment_fusion is False for m in reps)


def _fused_and_separate_agree(build, x, train=True):
    """Outputs and every buffer (BN running statistics) equal between moment fusion on and off, in the
    module's own training mode (which ``norm_eval`` / frozen stages adjust). Returns the separate-branch
    model and its state before the forward."""
    torch.manual_seed(0)
    separate = build().double()
    separate.train(train)  # (mmdet backbones' train() returns None)
    fused = copy.deepcopy(separate)
    fused.train(train)
    set_moment_fusion(separate, False)
    set_moment_fusion(fused, True)
    before = {k: v.clone() for k, v in separate.state_dict().items()}
    a, b = separate(x), fused(x)
    a, b = (torch.cat([t.flatten() for t in a]), torch.cat([t.flatten() for t in b]))
    assert (a - b).abs().max() <= 1e-9 * a.abs().max()
    for (name, buf), other in zip(separate.state_dict().items(), fused.state_dict().values()):
        assert (buf.double() - other.double()).abs().max() <= 1e-9 * (1 + buf.double().abs().max()), name
    return separate, before


@pytest.mark.parametrize('mode', ['train', 'norm_eval', 'frozen_stages', 'eval'])
def test_fused_and_separate_agree_in_every_bn_mode_ghostnetv3(mode):
    kwargs = {'norm_eval': dict(norm_eval=True), 'frozen_stages': dict(frozen_stages=4)}.get(mode, {})
    x = torch.randn(2, 3, 64, 64, dtype=torch.float64)
    model, before = _fused_and_separate_agree(lambda: GhostNetV3(widen_factor=1.0, out_indices=(9, ), **kwargs), x,
                                              train=mode != 'eval')
    if mode in ('norm_eval', 'eval'):  # every BN in eval mode: no running statistic may move
        for key, value in model.state_dict().items():
            if 'running' in key:
                assert torch.equal(value, before[key]), key


def test_fused_and_separate_agree_with_mmdet_resnet_norm_eval():
    """The issue's second case: an mmdet ResNet-50 wrapped by Reparameterized, on mmdet's defaults
    (norm_eval=True, frozen_stages=1)."""
    from mmengine.registry import MODELS, DefaultScope

    import mmcompact  # noqa: F401

    def build():
        with DefaultScope.overwrite_default_scope('mmdet'):
            return MODELS.build(dict(type='mmcompact.Reparameterized', input_shape=(1, 3, 64, 64),
                                     backbone=dict(type='ResNet', depth=50, norm_eval=True, frozen_stages=1)))

    _fused_and_separate_agree(build, torch.randn(2, 3, 64, 64, dtype=torch.float64))
