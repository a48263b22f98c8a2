"""Params and MACs reproduce the GhostNetV3 reference table (official code, 224x224) within 0.5%."""
import pytest
from conftest import build_classifier

from mmcompact.analysis import count_complexity, train_and_deploy_complexity

# width: (train params M, train MACs M, deploy params M, deploy MACs M), measured from the official GhostNetV3
# code (configs/ghostnetv3/README.md)
REFERENCE = {
    0.5: (3.395, 117.5, 2.853, 49.6),
    0.75: (5.446, 244.6, 4.294, 101.8),
    1.0: (8.129, 404.1, 6.148, 167.0),
    1.3: (12.218, 654.8, 8.948, 269.3),
    1.6: (17.276, 971.6, 12.378, 398.6),
}


@pytest.mark.parametrize('width', REFERENCE)
def test_reference_params_and_macs_in_both_forms(width):
    train, deploy = train_and_deploy_complexity(build_classifier(width), (1, 3, 224, 224), parts=[])
    measured = (train.params / 1e6, train.macs / 1e6, deploy.params / 1e6, deploy.macs / 1e6)
    for got, want in zip(measured, REFERENCE[width]):
        assert abs(got - want) / want <= 0.005, (width, measured, REFERENCE[width])


def test_deploy_constructed_model_counts_like_the_folded_one_and_parts_add_up():
    train, folded = train_and_deploy_complexity(build_classifier(0.5), (1, 3, 128, 128))
    built = count_complexity(build_classifier(0.5, deploy=True), (1, 3, 128, 128))
    assert (built.params, built.macs) == (folded.params, folded.macs)
    for c in (train, folded):
        top = [p for p in c.part_macs if '.' not in p]
        assert top == ['backbone', 'neck', 'head']
        assert sum(c.part_macs[p] for p in top) == c.macs
        stages = [p for p in c.part_macs if p.startswith('backbone.')]
        assert sum(c.part_macs[p] for p in stages) == c.part_macs['backbone']


def test_unknown_part_is_named():
    with pytest.raises(KeyError, match='backbone.nope'):
        count_complexity(build_classifier(0.5), (1, 3, 64, 64), parts=['backbone.nope'])


def test_one_deploy_form_for_the_flops_tool_and_the_structure_cost_table(cli, tmp_path):
    """The issue's case: a ResNet-18 classifier at 32x32 counted by the flops tool (train and --deploy) and by
    the structure search's count_deployed gives the same deploy params and MACs (reparam.deploy_form)."""
    from conftest import ROOT

    from mmcompact.structure import count_deployed
    from mmcompact.utils import build_model, load_config
    config = f'{ROOT}/projects/studies/configs/resnet18_synthetic_cls.py'
    expected = count_deployed(build_model(load_config(config)), (3, 32, 32))
    for extra in ([], ['--deploy']):
        code, stdout, stderr = cli('tools/analysis_tools/flops.py', config, '--shape', 32, 32, *extra)
        assert code == 0, stderr
        total = [line.split() for line in stdout.splitlines() if line.startswith('total')][0]
        assert total[-2:] == [f"{expected['params'] / 1e6:.3f}M", f"{expected['macs'] / 1e6:.3f}M"], total
