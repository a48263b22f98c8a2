"""Architecture and checkpoint compatibility with timm 1.0.31 (the reference implementation) and the
official release file format."""
import pytest
import torch
from conftest import build_classifier, randomize_bn

from mmcompact.checkpoint import save_atomic
from mmcompact.models import convert_and_verify_ghostnetv3, convert_ghostnetv3_state_dict
from mmcompact.reparam import max_abs_diff, reparameterize_model

timm = pytest.importorskip('timm')
from timm.utils.model import reparameterize_model as timm_reparameterize  # noqa: E402

WIDTHS = {0.5: 'ghostnetv3_050', 1.0: 'ghostnetv3_100', 1.3: 'ghostnetv3_130', 1.6: 'ghostnetv3_160'}


def timm_model(width, seed=0):
    torch.manual_seed(seed)
    return randomize_bn(timm.create_model(WIDTHS[width], num_classes=1000), seed).eval()


def to_official(state_dict):
    """timm keys -> the official release's keys ('bn1.' -> 'bn.' inside ghost modules and dw branches)."""
    out = {}
    for key, value in state_dict.items():
        if ('.ghost' in key or '.dw_rpr_' in key) and '.bn1.' in key:
            key = key.replace('.bn1.', '.bn.')
        out[key] = value
    return out


@pytest.mark.parametrize('width', WIDTHS)
def test_converted_timm_model_gives_the_same_outputs_trained_and_folded(width):
    reference = timm_model(width)
    converted, unknown = convert_ghostnetv3_state_dict(reference.state_dict())
    assert unknown == []
    model = build_classifier(width).eval()
    model.load_state_dict(converted, strict=True)
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        expected = reference(x)
        assert max_abs_diff(expected, model(x)) <= 1e-5
        timm_folded = timm_reparameterize(reference)  # timm folds a copy (inplace=False by default)
        assert sum(p.numel() for p in timm_folded.parameters()) < sum(p.numel() for p in reference.parameters())
        reparameterize_model(model)
        assert max_abs_diff(timm_folded(x), model(x)) <= 1e-5  # matches timm's folded model
        assert max_abs_diff(expected, model(x)) <= 1e-5


def test_folded_timm_state_dict_converts_into_the_deploy_form():
    reference = timm_reparameterize(timm_model(0.5))
    converted, unknown = convert_ghostnetv3_state_dict(reference.state_dict())
    assert unknown == []
    model = build_classifier(0.5, deploy=True).eval()
    model.load_state_dict(converted, strict=True)
    x = torch.randn(1, 3, 128, 160)
    with torch.no_grad():
        assert max_abs_diff(reference(x), model(x)) <= 1e-5


def test_official_release_file_converts_ema_by_default(tmp_path):
    ema, plain = timm_model(1.0, seed=1), timm_model(1.0, seed=2)
    release = dict(state_dict=to_official(plain.state_dict()), state_dict_ema=to_official(ema.state_dict()),
                   epoch=600)
    release['state_dict_ema']['conv_stem.total_ops'] = torch.zeros(1)  # thop counters some files carry
    src = save_atomic(release, str(tmp_path / 'ghostnetv3-1.0.pth.tar'))
    x = torch.randn(1, 3, 224, 224)
    for use_ema, reference in ((True, ema), (False, plain)):
        out = str(tmp_path / f'converted_{use_ema}.pth')
        report = convert_and_verify_ghostnetv3(src, out, use_ema=use_ema)
        assert report['width'] == 1.0 and report['form'] == 'training'
        model = build_classifier(1.0).eval()
        model.load_state_dict(torch.load(out, weights_only=True)['state_dict'], strict=True)
        with torch.no_grad():
            assert max_abs_diff(reference(x), model(x)) <= 1e-5


def test_unknown_and_missing_keys_are_listed_by_name(tmp_path):
    state = timm_model(0.5).state_dict()
    state['blocks.3.0.mystery.weight'] = torch.zeros(1)
    with pytest.raises(KeyError, match=r'blocks\.3\.0\.mystery\.weight'):
        convert_and_verify_ghostnetv3(save_atomic(state, str(tmp_path / 'a.pth')), str(tmp_path / 'o.pth'))
    state = timm_model(0.5).state_dict()
    del state['blocks.2.0.ghost1.primary_rpr_conv.1.conv.weight']
    with pytest.raises(KeyError, match=r'missing .*backbone\.stages\.2\.0\.ghost1\.primary\.branches\.1'):
        convert_and_verify_ghostnetv3(save_atomic(state, str(tmp_path / 'b.pth')), str(tmp_path / 'p.pth'))
    assert not (tmp_path / 'o.pth').exists() and not (tmp_path / 'p.pth').exists()


def test_convert_cli(tmp_path, cli):
    src = save_atomic(timm_model(0.5).state_dict(), str(tmp_path / 'timm.pth'))
    out = tmp_path / 'mm.pth'
    code, stdout, stderr = cli('tools/model_converters/convert_ghostnetv3.py', src, out)
    assert code == 0, stderr
    assert 'width 0.5x' in stdout and out.exists()
    before = out.stat().st_mtime_ns
    code, _, stderr = cli('tools/model_converters/convert_ghostnetv3.py', src, out)
    assert code == 1 and 'already exists' in stderr and out.stat().st_mtime_ns == before
    code, _, stderr = cli('tools/model_converters/convert_ghostnetv3.py', tmp_path / 'nope.pth', tmp_path / 'x.pth')
    assert code == 1 and 'does not exist' in stderr
