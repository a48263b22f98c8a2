"""Searchable widths: the chain selection is exact, the space contains the teacher and its uniform width
multipliers at exactly counted costs, and a width search trains, selects and exports a narrowed student."""
import itertools
import random

import pytest
import torch
from conftest import ROOT, make_image_folder, randomize_bn
from mmengine.config import Config

import mmcompact  # noqa: F401
from mmcompact.structure import (InfeasibleBudget, assemble, cost_table, count_deployed, normalised_mse, pareto_front,
                                 sample_structures, select)
from mmcompact.structure.pipeline import build_teacher_and_space, search_settings
from mmcompact.structure.search import BlockwiseDistillation
from mmcompact.utils import build_model, load_config

WIDTH_SEARCH = """
_base_ = ['{root}/projects/studies/configs/structure/resnet18c_32px_width_search.py']
model = dict(backbone=dict(stem_channels=32, base_channels=32), head=dict(num_classes=2, in_channels=256))
data_preprocessor = dict(num_classes=2)
train_dataloader = dict(batch_size=4, dataset=dict(data_root='{data}'))
val_dataloader = dict(batch_size=8, dataset=dict(data_root='{data}'))
test_dataloader = val_dataloader
structure_search = dict(
    teacher_checkpoint=None, epochs=2, checkpoint_interval=2, correlation_samples=4,
    widths=dict(ratios=[0.5]),
    candidates=dict(_delete_=True, stem=[dict(type='Keep'), dict(type='ConvStack')],
                    **{{layer: [dict(type='Keep'), dict(type='BasicResidual', num_blocks=2), dict(type='Skip')]
                       for layer in ('layer1', 'layer2', 'layer3', 'layer4')}}))
"""


@pytest.fixture(scope='module')
def width_search(tmp_path_factory):
    """(config path, config): a ResNetV1c-18 teacher at half width (random weights), stem and four stages as
    blocks, every boundary at its own width or half of it."""
    root = tmp_path_factory.mktemp('widths')
    data = make_image_folder(root / 'cls', per_class=8, size=32)
    path = root / 'width_search.py'
    path.write_text(WIDTH_SEARCH.format(root=ROOT, data=data))
    return str(path), load_config(str(path))


def _chain_brute_force(scores, costs, links, budgets):
    best = None
    for choice in itertools.product(*[range(len(s)) for s in scores]):
        if any(links[b][choice[b]][0] != links[b - 1][choice[b - 1]][1] for b in range(1, len(choice))):
            continue
        totals = [0.0] * len(budgets)
        for b, c in enumerate(choice):
            totals = [t + v for t, v in zip(totals, costs[b][c])]
        if all(t <= budget for t, budget in zip(totals, budgets)):
            score = sum(scores[b][c] for b, c in enumerate(choice))
            if best is None or score < best[0]:
                best = (score, choice)
    return best


def _random_chain_table(rng, kinds):
    widths = [[rng.choice([8, 16])]] + [rng.sample([8, 16, 24], rng.randint(1, 3)) for _ in range(rng.randint(1, 4))]
    scores, costs, links = [], [], []
    for b in range(len(widths) - 1):
        pairs = [(i, o) for i in widths[b] for o in widths[b + 1]]
        row = [p for p in pairs for _ in range(rng.randint(1, 2))]
        links.append(row)
        scores.append([rng.choice([rng.random(), 0.5]) for _ in row])
        costs.append([[rng.uniform(0, 1e6) * rng.random() for _ in range(kinds)] for _ in row])
    return scores, costs, links


@pytest.mark.parametrize('kinds', [1, 2])
def test_chain_selection_matches_brute_force(kinds):
    """Width-linked candidates: the optimum over consistent chains only, never over budget, feasible budgets
    (including ones met exactly) never refused; the Pareto front is optimal at each of its points."""
    rng = random.Random(kinds)
    feasible = 0
    for _ in range(150):
        scores, costs, links = _random_chain_table(rng, kinds)
        if rng.random() < 0.5:  # exactly the cost of one consistent chain
            pick = _chain_brute_force([[0.0] * len(r) for r in scores], costs, links, [float('inf')] * kinds)[1]
            budgets = [0.0] * kinds
            for b, c in enumerate(pick):
                budgets = [t + v for t, v in zip(budgets, costs[b][c])]
        else:
            budgets = [sum(max(c[k] for c in row) for row in costs) * rng.random() for k in range(kinds)]
        optimum = _chain_brute_force(scores, costs, links, budgets)
        if optimum is None:
            with pytest.raises(InfeasibleBudget):
                select(scores, costs, budgets, links=links)
            continue
        feasible += 1
        result = select(scores, costs, budgets, links=links)
        assert result.score == pytest.approx(optimum[0], abs=1e-12)
        assert all(c <= b for c, b in zip(result.cost, budgets))
        assert all(links[b][result.choice[b]][0] == links[b - 1][result.choice[b - 1]][1]
                   for b in range(1, len(result.choice)))
        if kinds == 1:
            for point in pareto_front(scores, [[c[0] for c in row] for row in costs], links):
                assert point.score == pytest.approx(_chain_brute_force(scores, costs, links, list(point.cost))[0])
    assert feasible > 60


def test_normalised_mse_counts_dropped_channels_at_their_variance():
    torch.manual_seed(0)
    target = torch.randn(4, 6, 5, 5) * torch.arange(1, 7).view(1, 6, 1, 1)
    assert normalised_mse(target, target, torch.arange(6)) == pytest.approx(0.0)
    keep = torch.tensor([5, 4, 3])
    dropped = target[:, :3]
    expected = (dropped - dropped.mean((0, 2, 3), keepdim=True)).pow(2).sum() / target.numel() / target.var()
    assert normalised_mse(target[:, keep], target, keep) == pytest.approx(float(expected), rel=1e-5)
    with pytest.raises(ValueError, match='does not match'):
        normalised_mse(target[:, :2], target, keep)


def _choice(space, width_of):
    """The chain taking ``width_of(j)`` at every boundary j, with the first candidate type that is not Skip."""
    choice = []
    for b, row in enumerate(space.links):
        want = (width_of(b), width_of(b + 1))
        choice.append(next(c for c, link in enumerate(row) if tuple(link) == want
                           and space.menus[b][c]['type'] != 'Skip'))
    return choice


def test_space_contains_the_teacher_and_its_uniform_half_width_at_exact_costs(width_search):
    _, cfg = width_search
    settings = search_settings(cfg)
    model, space = build_teacher_and_space(cfg, settings)
    assert space.widths == [[3], [16, 32], [16, 32], [32, 64], [64, 128], [128, 256]]
    table = cost_table(model, space, settings['input_shape'])

    def predicted(choice):
        return {k: table['fixed'][k] + sum(table['table'][b][c][k] for b, c in enumerate(choice))
                for k in ('macs', 'params')}

    teacher = _choice(space, lambda j: space.widths[j][-1])
    assert [space.menus[b][c]['type'] for b, c in enumerate(teacher)] == ['Keep'] * 5
    assert predicted(teacher) == table['teacher'] == count_deployed(model, (3, 32, 32))
    half = _choice(space, lambda j: space.widths[j][0])
    student = assemble(model, space, half)
    assert predicted(half) == count_deployed(student, (3, 32, 32))
    assert student.eval()(torch.zeros(1, 3, 32, 32)).shape == (1, 2)
    # the same network as mmpretrain builds it at half width: equal MACs; params differ only by the search's
    # per-channel output affines (2 per channel of each block's output) and by the BatchNorms inside
    # mmpretrain's BasicBlock, which the deploy form does not fuse (not conv-BN pairs of a Sequential):
    # one extra parameter per channel of each of its 4 BNs per stage
    reference = Config(dict(cfg.to_dict()))
    reference.pop('structure_search')
    reference.model.backbone.update(stem_channels=16, base_channels=16)
    reference.model.head.in_channels = 128
    counted = count_deployed(build_model(reference), (3, 32, 32))
    assert counted['macs'] == predicted(half)['macs']
    affines = 2 * (16 + 16 + 32 + 64 + 128)
    unfused = 4 * (16 + 32 + 64 + 128)
    assert predicted(half)['params'] - affines == counted['params'] - unfused
    # random structures agree on the widths between blocks
    links = space.links
    for choice in sample_structures([[c['macs'] for c in row] for row in table['table']], 0, 6, 0, links=links):
        assert all(links[b][choice[b]][0] == links[b - 1][choice[b - 1]][1] for b in range(1, 5))


def test_width_search_trains_ranks_channels_and_exports_a_narrowed_student(width_search, tmp_path, cli):
    path, cfg = width_search
    from mmengine.runner import Runner, set_random_seed
    settings = search_settings(cfg)
    set_random_seed(0)
    model, space = build_teacher_and_space(cfg, settings)
    randomize_bn(model)
    loaders = [Runner.build_dataloader(cfg[k], seed=0) for k in ('train_dataloader', 'val_dataloader')]
    search = BlockwiseDistillation(model, space, *loaders, str(tmp_path / 'lib'), epochs=2,
                                   optimizer=dict(type='Adam', lr=3e-3))
    search.run()
    batch = next(iter(loaders[0]))
    _, xs, ys, _ = search.teacher(batch)
    # the output affine is calibrated to the channels each candidate writes: at full width the teacher's own
    # order (forward never permutes a full-width boundary), at a narrowed width the first ranked channels
    search.calibrate(batch)
    with torch.no_grad():
        for b, row in enumerate(space.interfaces):
            for c, interface in enumerate(row):
                candidate = search.bank.blocks[b][c]
                if space.is_teacher_block(b, c) or space.menus[b][c]['type'] == 'Skip':
                    continue
                full_in = interface.in_channels == xs[b].shape[1]
                full_out = interface.out_channels == ys[b].shape[1]
                x = xs[b] if full_in else xs[b].index_select(1, search.bank.order(b)[:interface.in_channels])
                y = ys[b] if full_out else ys[b].index_select(1, search.bank.order(b + 1)[:interface.out_channels])
                torch.testing.assert_close(candidate(x).mean((0, 2, 3)), y.mean((0, 2, 3)), atol=1e-3, rtol=1e-3)
    for j in range(1, 6):
        order = search.bank.order(j)
        assert sorted(order.tolist()) == list(range(ys[j - 1].shape[1]))  # a permutation of the channels
    scores = search.scores()
    narrow = [(b, c) for b, row in enumerate(space.interfaces) for c, i in enumerate(row)
              if i.out_channels < space.blocks[b].interface.out_channels]
    assert narrow and all(0 < scores[b][c] < float('inf') for b, c in narrow)

    with pytest.raises(ValueError, match='progressive'):
        BlockwiseDistillation(model, space, *loaders, str(tmp_path / 'p'), progressive=True)

    # the tools: search, then export under a budget that needs narrowing; the student loads strictly
    work = tmp_path / 'search'
    code, _, err = cli('tools/structure/search_structure.py', path, '--work-dir', str(work))
    assert code == 0, err
    teacher_macs = count_deployed(model, (3, 32, 32))['macs']
    code, out, err = cli('tools/structure/export_structure.py', str(work), '--macs', str(int(teacher_macs * 0.4)),
                         '--out', str(tmp_path / 'x'))
    assert code == 0 and 'exact' in out, err
    student_cfg = load_config(str(tmp_path / 'x' / 'student.py'))
    student = build_model(student_cfg)
    state = torch.load(str(tmp_path / 'x' / 'student_init.pth'), weights_only=True)['state_dict']
    student.load_state_dict(state)  # strict
    assert student_cfg.model.head.in_channels == student.head.fc.in_features
    assert count_deployed(student, (3, 32, 32))['macs'] <= teacher_macs * 0.4
    assert student.eval()(torch.zeros(1, 3, 32, 32)).shape == (1, 2)


def test_bad_width_settings_name_the_key(width_search):
    _, cfg = width_search
    bad = Config(dict(cfg.to_dict()))
    bad.structure_search.widths = dict(ratios=[1.5])
    with pytest.raises(ValueError, match='structure_search.widths'):
        build_teacher_and_space(bad, search_settings(bad))


@pytest.mark.parametrize('family', ['mobilenetv2', 'resnet18c-fmnist'])
def test_family_has_its_uniform_networks_in_the_space_at_exact_costs(family):
    """projects/studies/structure_study.py --family mobilenetv2 / resnet18c-fmnist: the uniform 0.25x and 0.5x
    networks built from the family's own blocks (its stages) are choices of its search space (matched by
    candidate options and widths), their cost from the table equals an exact re-count, and the family's budgets
    sit on them (the smallest at the 0.25x network, the largest at the 0.5x one, within 3% above). (ResNetV1c-18
    on synthetic data: the toy study test.)"""
    import importlib.util
    import json
    import os
    spec = importlib.util.spec_from_file_location('structure_study', os.path.join(ROOT, 'projects', 'studies',
                                                                                  'structure_study.py'))
    study = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(study)
    settings_family = study.FAMILIES[family]
    cfg = load_config(settings_family['search'], {'structure_search.teacher_checkpoint': None})
    settings = search_settings(cfg)
    model, space = build_teacher_and_space(cfg, settings)
    shape = tuple(settings['input_shape'])
    table = cost_table(model, space, shape)
    result = json.loads(json.dumps(dict(  # as search.json holds it
        blocks=[dict(path=b.path, in_channels=b.interface.in_channels, out_channels=b.interface.out_channels,
                     stride=b.interface.stride, input_shape=list(b.input_shape)) for b in space.blocks],
        candidates=space.menus, links=space.links, labels=space.labels)))
    uniform_macs = []
    for ratio in (0.25, 0.5):
        widths = [space.widths[j + 1][0 if ratio == 0.25 else 1] for j in range(len(space.blocks))]
        choice = study.uniform_choice(result, widths, settings_family)
        assert choice is not None, (ratio, widths)
        uniform = build_model(study.uniform_config(cfg, result, widths, settings_family))
        exact = count_deployed(uniform, shape)
        assert exact['macs'] == table['fixed']['macs'] + sum(table['table'][b][c]['macs'] for b, c in enumerate(choice))
        uniform_macs.append(exact['macs'])
    assert settings_family['budgets'][0] >= uniform_macs[0]
    if family == 'resnet18c-fmnist':
        assert uniform_macs[0] * 1.03 >= settings_family['budgets'][0]
        assert uniform_macs[1] <= settings_family['budgets'][2] <= uniform_macs[1] * 1.03
        return
    # uniform-init's stand-in when the budget-matched widths are not in the space: the space's own multipliers
    small, middle, large = settings_family['budgets']
    choice, widths, macs = study.searched_uniform(cfg, result, small, shape, settings_family)
    assert widths == [8, 8, 8, 8, 16, 24, 40, 80, 320]  # MobileNetV2 0.25x, rounded to 8 as the space rounds
    assert macs == table['fixed']['macs'] + sum(table['table'][b][c]['macs'] for b, c in enumerate(choice)) <= small
    assert study.searched_uniform(cfg, result, middle, shape, settings_family) is None  # none within 3% under
