import copy

import pytest
import torch
from conftest import randomize_bn
from mmcv.cnn import ConvModule
from torch import nn

from mmcompact.reparam import ConvBN, FoldError, RepConvBN, foldable_modules, max_abs_diff, reparameterize_model

CASES = {
    'depthwise 3x3 + scale + identity': dict(in_channels=8, out_channels=8, kernel_size=3, groups=8),
    'dense 3x3 + scale + identity': dict(in_channels=8, out_channels=8, kernel_size=3),
    'grouped 3x3': dict(in_channels=8, out_channels=8, kernel_size=3, groups=2),
    'dense 1x1 + identity': dict(in_channels=8, out_channels=8, kernel_size=1),
    'dense 1x1 widening (no identity)': dict(in_channels=8, out_channels=12, kernel_size=1),
    'depthwise 5x5 stride 2 (no identity)': dict(in_channels=8, out_channels=8, kernel_size=5, stride=2,
                                                 groups=8),
    'dense 3x3 stride 2, channel change': dict(in_channels=6, out_channels=10, kernel_size=3, stride=2),
    'non-square (1, 5) depthwise': dict(in_channels=8, out_channels=8, kernel_size=(1, 5), groups=8),
    'kxk only (no scale, no identity)': dict(in_channels=8, out_channels=8, kernel_size=3,
                                             scale_branch=False, identity_branch=False),
    'single branch + ReLU': dict(in_channels=8, out_channels=8, kernel_size=3, num_branches=1,
                                 act_cfg=dict(type='ReLU')),
}


@pytest.mark.parametrize('cfg', CASES.values(), ids=CASES.keys())
def test_fold_is_exact_per_branch_type(cfg):
    torch.manual_seed(0)
    module = randomize_bn(RepConvBN(**cfg)).eval()
    x = torch.randn(2, cfg['in_channels'], 13, 11)
    expected = module(x)
    module.switch_to_deploy()
    assert module.deploy and not hasattr(module, 'branches')
    assert max_abs_diff(expected, module(x)) <= 1e-5


def test_branch_layout_follows_applicability():
    dw = RepConvBN(8, 8, 3, groups=8)
    assert len(dw.branches) == 3 and dw.has_scale and dw.has_identity
    assert not RepConvBN(8, 8, 1).has_scale  # a 1x1 conv has no separate scale branch
    assert not RepConvBN(8, 8, 3, stride=2).has_identity
    assert not RepConvBN(8, 16, 3).has_identity
    with pytest.raises(ValueError, match='num_branches'):
        RepConvBN(8, 8, 3, num_branches=0)


def test_idempotent_and_deploy_constructor_loads_folded_state_strictly():
    module = randomize_bn(RepConvBN(8, 8, 3, groups=8, act_cfg=dict(type='ReLU'))).eval()
    x = torch.randn(1, 8, 9, 9)
    reparameterize_model(module)
    state = copy.deepcopy(module.state_dict())
    reparameterize_model(module)  # second fold changes nothing
    assert all(torch.equal(state[k], v) for k, v in module.state_dict().items())
    assert foldable_modules(module) == []
    deployed = RepConvBN(8, 8, 3, groups=8, act_cfg=dict(type='ReLU'), deploy=True).eval()
    deployed.load_state_dict(state, strict=True)
    assert torch.equal(deployed(x), module(x))


def test_gradients_reach_every_branch():
    module = RepConvBN(8, 8, 3, groups=8)
    module(torch.randn(2, 8, 7, 7)).square().sum().backward()
    for name, param in module.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name


def test_folded_model_stays_trainable_and_keeps_frozen_params_frozen():
    trainable = RepConvBN(8, 8, 3).eval()
    frozen = RepConvBN(8, 8, 3).eval().requires_grad_(False)
    model = nn.Sequential(trainable, frozen)
    reparameterize_model(model)
    assert all(p.requires_grad for p in trainable.parameters())
    assert not any(p.requires_grad for p in frozen.parameters())
    model.train()
    model(torch.randn(2, 8, 5, 5)).sum().backward()
    assert trainable.fused.weight.grad is not None


def test_training_mode_is_refused_and_inplace_false_keeps_the_original():
    model = nn.Sequential(RepConvBN(4, 4, 3))
    with pytest.raises(FoldError, match=r'model.eval\(\)'):
        reparameterize_model(model)
    model.eval()
    folded = reparameterize_model(model, inplace=False)
    assert folded[0].deploy and not model[0].deploy


def test_unfoldable_norm_names_the_module_path():
    model = nn.Sequential(nn.Conv2d(3, 8, 1), RepConvBN(8, 8, 3, norm_cfg=dict(type='GN', num_groups=2)))
    model.eval()
    with pytest.raises(FoldError, match=r"'1[.a-z0-9]*'.*GroupNorm.*cannot be folded"):
        reparameterize_model(model)


def test_syncbn_branches_fold_like_bn():
    module = RepConvBN(8, 8, 3, groups=8, norm_cfg=dict(type='SyncBN'))
    assert isinstance(module.branches[0].bn, nn.SyncBatchNorm)
    randomize_bn(module).eval()
    x = torch.randn(2, 8, 6, 6)
    # SyncBatchNorm in eval mode runs on CPU like BatchNorm.
    expected = module(x)
    module.switch_to_deploy()
    assert max_abs_diff(expected, module(x)) <= 1e-5


def test_fold_low_precision_modules():
    module = randomize_bn(RepConvBN(8, 8, 3, groups=8)).eval().to(torch.bfloat16)
    x = torch.randn(2, 8, 6, 6, dtype=torch.bfloat16)
    expected = module(x).float()
    module.switch_to_deploy()
    assert module.fused.weight.dtype == torch.bfloat16
    assert max_abs_diff(expected, module(x).float()) <= 0.1  # bf16 rounding, not a fold error


def test_fuse_conv_bn_pairs_where_the_order_is_known():
    torch.manual_seed(0)
    model = nn.Sequential(
        ConvBN(3, 8, 3, act_cfg=dict(type='ReLU')),
        nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU()),
        ConvModule(8, 8, 1, norm_cfg=dict(type='BN')),
        RepConvBN(8, 8, 3, groups=8))
    randomize_bn(model).eval()
    x = torch.randn(2, 3, 10, 10)
    expected = model(x)
    reparameterize_model(model, fuse_conv_bn=True)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    assert max_abs_diff(expected, model(x)) <= 1e-5


def test_foreign_switch_to_deploy_blocks_are_folded_too():
    from mmpretrain.models.backbones.repvgg import RepVGGBlock
    block = randomize_bn(RepVGGBlock(8, 8)).eval()
    model = nn.Sequential(block, RepConvBN(8, 8, 3))
    randomize_bn(model).eval()
    x = torch.randn(1, 8, 7, 7)
    expected = model(x)
    assert foldable_modules(model) == ['0', '1']
    reparameterize_model(model)
    assert block.deploy and foldable_modules(model) == []
    assert max_abs_diff(expected, model(x)) <= 1e-5


def test_bn_with_near_zero_variance_folds_exactly():
    """running_var ~ 0 makes 1/sqrt(var + eps) large (~300 for eps 1e-5): the float64 fold stays exact."""
    module = randomize_bn(RepConvBN(8, 8, 3, groups=8)).eval()
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_var.fill_(1e-12)
    x = torch.randn(2, 8, 9, 9)
    expected = module(x)
    module.switch_to_deploy()
    assert max_abs_diff(expected, module(x)) <= 1e-5 * max(1.0, expected.abs().max().item())
