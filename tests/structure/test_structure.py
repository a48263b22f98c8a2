"""Compact structure learning: knapsack optimality, exact costs, block-wise distillation, export, resume."""
import itertools
import json
import os
import random

import pytest
import torch
from conftest import ROOT, randomize_bn, torchrun_two_processes
from mmengine.config import Config

import mmcompact  # noqa: F401
from mmcompact.registry import CANDIDATES
from mmcompact.reparam import deploy_form, reparameterize_model
from mmcompact.structure import (InfeasibleBudget, Interface, assemble, build_candidate, cost_table, count_deployed,
                                 held_out_split, pareto_front, rank_correlation, sample_structures, select)
from mmcompact.structure.pipeline import build_teacher_and_space, search_settings
from mmcompact.structure.search import BlockwiseDistillation
from mmcompact.utils import build_model, load_config


def brute_force(scores, costs, budgets):
    best = None
    for choice in itertools.product(*[range(len(s)) for s in scores]):
        totals = [sum(costs[b][c][k] for b, c in enumerate(choice)) for k in range(len(budgets))]
        if all(t <= budget for t, budget in zip(totals, budgets)):
            score = sum(scores[b][c] for b, c in enumerate(choice))
            best = score if best is None else min(best, score)
    return best


def brute_force_selection(scores, costs, budgets):
    """(lowest score, its choices) over every feasible selection, costs summed in block order; None if none."""
    best = None
    for choice in itertools.product(*[range(len(s)) for s in scores]):
        totals = [0.0] * len(budgets)
        for b, c in enumerate(choice):
            totals = [t + v for t, v in zip(totals, costs[b][c])]
        if all(t <= budget for t, budget in zip(totals, budgets)):
            score = 0.0
            for b, c in enumerate(choice):
                score += scores[b][c]
            if best is None or score < best[0]:
                best = (score, choice)
    return best


def _check_against_brute_force(scores, costs, budgets):
    optimum = brute_force_selection(scores, costs, budgets)
    if optimum is None:
        with pytest.raises(InfeasibleBudget):
            select(scores, costs, budgets)
        return False
    result = select(scores, costs, budgets)
    assert result.score == pytest.approx(optimum[0], abs=1e-12)
    assert all(c <= b for c, b in zip(result.cost, budgets))  # never over budget, not even by rounding
    return True


@pytest.mark.parametrize('kinds', [1, 2])
@pytest.mark.parametrize('integer', [True, False])
def test_knapsack_matches_brute_force_on_random_tables(kinds, integer):
    """Real-valued (and integer) costs of one or two kinds, with ties in scores and budgets on the boundary."""
    rng = random.Random(kinds * 10 + integer)
    feasible = 0
    for _ in range(200):
        scores = [[rng.choice([rng.random(), 0.5, 0.25]) for _ in range(rng.randint(1, 4))]
                  for _ in range(rng.randint(1, 5))]
        draw = (lambda: float(rng.randint(0, 12))) if integer else (lambda: rng.uniform(0, 1e6) * rng.random())
        costs = [[[draw() for _ in range(kinds)] for _ in s] for s in scores]
        if rng.random() < 0.5:  # a budget exactly at the cost of some selection: the feasibility boundary
            pick = [rng.randrange(len(s)) for s in scores]
            budgets = [0.0] * kinds
            for b, c in enumerate(pick):
                budgets = [t + v for t, v in zip(budgets, costs[b][c])]
        else:
            budgets = [sum(max(c[k] for c in row) for row in costs) * rng.random() for k in range(kinds)]
        feasible += _check_against_brute_force(scores, costs, budgets)
    assert feasible > 100


def test_knapsack_is_exact_where_rounding_costs_up_was_not():
    """The issue's example: (0, 0) costs 2.999 <= 3 and scores 0; a grid rounding up picked (0, 1)."""
    result = select([[0, 1], [0, 1]], [[[1.001], [0]], [[1.998], [0]]], [3.0])
    assert result.choice == (0, 0) and result.score == 0.0
    # a budget met only exactly, with costs that are not multiples of any grid step
    assert select([[0, 1], [0, 1]], [[[0.1], [0]], [[0.2], [0]]], [0.1 + 0.2]).choice == (0, 0)


def test_infeasible_budget_states_the_smallest_cost():
    with pytest.raises(InfeasibleBudget, match='cheapest choice costs 5'):
        select([[0.0, 1.0], [0.0, 1.0]], [[[4], [2]], [[9], [3]]], [4])


def test_pareto_front_is_monotone_and_optimal_at_each_point():
    rng = random.Random(3)
    scores = [[rng.random() for _ in range(4)] for _ in range(4)]
    costs = [[rng.randint(0, 10) for _ in range(4)] for _ in range(4)]
    front = pareto_front(scores, costs)
    assert [p.cost[0] for p in front] == sorted(p.cost[0] for p in front)
    assert all(a.score > b.score for a, b in zip(front, front[1:]))
    for point in front:
        assert point.score == pytest.approx(brute_force(scores, [[[c] for c in row] for row in costs],
                                                        [point.cost[0]]))


def test_sampled_structures_spread_over_the_cost_range():
    rng = random.Random(1)
    costs = [[rng.uniform(1, 10) for _ in range(4)] for _ in range(5)]
    choices = sample_structures(costs, 3.0, 8, seed=0)
    totals = [3.0 + sum(costs[b][c] for b, c in enumerate(choice)) for choice in choices]
    low, high = 3.0 + sum(map(min, costs)), 3.0 + sum(map(max, costs))
    assert len({tuple(c) for c in choices}) == 8 and totals == sorted(totals)
    bins = {min(int((t - low) / (high - low) * 8), 7) for t in totals}
    assert len(bins) >= 6  # nearly one per eighth of the range, not clustered in the middle
    assert sample_structures(costs, 3.0, 8, seed=0) == choices
    split = held_out_split(8, 2, seed=0)
    assert sorted(split['fit'] + split['held_out']) == list(range(8)) and len(split['held_out']) == 2
    with pytest.raises(ValueError, match='held_out'):
        held_out_split(4, 3, seed=0)


def test_rank_correlation():
    assert rank_correlation([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert rank_correlation([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)


@pytest.mark.parametrize('name', sorted(set(CANDIDATES.module_dict) - {'Keep', 'Skip'}))
@pytest.mark.parametrize('interface', [Interface(16, 16, 1), Interface(16, 24, 2)])
def test_every_candidate_keeps_the_interface_and_folds_exactly(name, interface):
    module = randomize_bn(build_candidate(dict(type=name), interface)).eval()
    x = torch.randn(2, interface.in_channels, 16, 16)
    y = module(x)
    assert y.shape == (2, interface.out_channels, 16 // interface.stride, 16 // interface.stride)
    folded = deploy_form(module)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    torch.testing.assert_close(folded(x), y, atol=1e-4, rtol=1e-4)
    # deploy=True builds what tools/deployment/fold.py writes (re-param branches folded) and loads it strictly.
    deployed = build_candidate(dict(type=name), interface, deploy=True)
    deployed.load_state_dict(reparameterize_model(module, inplace=False).state_dict())


def test_cost_table_matches_the_flops_counter_on_assembled_models(tiny_search):
    _, cfg = tiny_search
    settings = search_settings(cfg)
    model, space = build_teacher_and_space(cfg, settings)
    table = cost_table(model, space, settings['input_shape'])
    assert table['teacher'] == count_deployed(model, (3, 32, 32))
    rng = random.Random(0)
    for _ in range(4):
        choice = [rng.randrange(len(m)) for m in space.menus]
        exact = count_deployed(assemble(model, space, choice), (3, 32, 32))
        for kind in ('macs', 'params'):
            assert exact[kind] == table['fixed'][kind] + sum(table['table'][b][c][kind]
                                                             for b, c in enumerate(choice))


def _search(cfg, work_dir, **options):
    from mmengine.runner import Runner, set_random_seed
    settings = search_settings(cfg)
    set_random_seed(0)
    model, space = build_teacher_and_space(cfg, settings)
    randomize_bn(model)
    loaders = [Runner.build_dataloader(cfg[k], seed=0) for k in ('train_dataloader', 'val_dataloader')]
    return BlockwiseDistillation(model, space, *loaders, str(work_dir), **dict(
        dict(epochs=settings['epochs'], optimizer=dict(type='Adam', lr=3e-3), checkpoint_interval=2), **options))


def test_blockwise_distillation_reduces_every_candidates_loss(tiny_search, tmp_path):
    _, cfg = tiny_search
    search = _search(cfg, tmp_path)
    before = search.scores()
    search.run()
    after = search.scores()
    for b, labels in enumerate(search.space.labels):
        for c, label in enumerate(labels):
            if label == 'keep':  # the teacher's block itself, frozen: error 0
                assert before[b][c] < 1e-10 and after[b][c] < 1e-10
            elif label != 'skip':
                assert after[b][c] < before[b][c], (search.space.blocks[b].path, label)


class Interrupt(Exception):
    pass


def test_search_resumes_to_the_same_weights(tiny_search, tmp_path):
    _, cfg = tiny_search
    reference = _search(cfg, tmp_path / 'full')
    reference.run()
    interrupted = _search(cfg, tmp_path / 'cut')
    calls = []

    def stop_at_seven(n):
        calls.append(n)
        if len(calls) == 7:  # iteration 7 of 12 (4 per epoch); the last checkpoint is at epoch 2, step 2
            raise Interrupt

    with pytest.raises(Interrupt):
        interrupted.run(progress=stop_at_seven)
    resumed = _search(cfg, tmp_path / 'cut')
    resumed.run(resume=True)
    for key, value in reference.bank.state_dict().items():
        assert torch.equal(value, resumed.bank.state_dict()[key]), key
    assert resumed.history == reference.history


def test_plateau_stopping_stops_each_candidate_and_the_search(tiny_search, tmp_path):
    """With min_delta=0.99 no epoch after the first counts as an improvement: with patience 1 every candidate
    stops after epoch 2, its weights stay as they were, and the search ends before its 5-epoch bound."""
    _, cfg = tiny_search
    search = _search(cfg, tmp_path, epochs=5, plateau=dict(patience=1, min_delta=0.99))
    weights = []

    def snapshot(n):
        if len(weights) == 0 and search.history and len(search.history) == 2:
            weights.append({k: v.clone() for k, v in search.bank.state_dict().items()})

    search.run(progress=snapshot)
    assert len(search.history) == 2 and not any(map(any, search.active))
    assert all(stale == 1 for row in search.stale for stale in row)
    for key, value in search.bank.state_dict().items():  # nothing trained after the stop
        assert torch.equal(value, weights[0][key]), key
    with pytest.raises(ValueError, match='structure_search.plateau'):
        _search(cfg, tmp_path / 'bad', plateau=dict(patience=0))


def test_progressive_inputs_are_the_drawn_candidates_outputs(tiny_search, tmp_path):
    """Block 0 gets the teacher's input; block b > 0 gets what the drawn candidate of block b - 1 made of its
    own input; without the option every block gets the teacher's input."""
    _, cfg = tiny_search
    for progressive in (False, True):
        search = _search(cfg, tmp_path / str(progressive), progressive=progressive)
        batch = next(iter(search.train_loader))
        _, xs, ys, _ = search.teacher(batch)
        feed = search.feed_choice(iteration=3)
        assert (feed is not None) == progressive
        seen, outputs = {}, {}

        def record(key):
            def hook(module, args, out):
                seen[key], outputs[key] = args[0], out.detach()
            return hook

        hooks = [candidate.register_forward_hook(record((b, c)))
                 for b, candidates in enumerate(search.bank.blocks) for c, candidate in enumerate(candidates)]
        search.bank.eval()  # same outputs for the same inputs (no batch statistics)
        search.bank(xs, ys, feed=feed)
        for hook in hooks:
            hook.remove()
        for b in range(len(xs)):
            expected = xs[b] if not progressive or b == 0 else outputs[(b - 1, feed[b - 1])]
            for c in range(len(search.bank.blocks[b])):
                assert torch.equal(seen[(b, c)], expected), (progressive, b, c)
        if progressive:
            assert not torch.equal(seen[(1, 0)], xs[1])  # a different input than the teacher's
    assert _search(cfg, tmp_path / 'p').feed_choice(7) is None


def test_search_with_plateau_and_progressive_resumes_to_the_same_weights(tiny_search, tmp_path):
    _, cfg = tiny_search
    options = dict(plateau=dict(patience=1, min_delta=0.3), progressive=True)
    reference = _search(cfg, tmp_path / 'full', **options)
    reference.run()
    interrupted = _search(cfg, tmp_path / 'cut', **options)
    calls = []

    def stop_at_nine(n):
        calls.append(n)
        if len(calls) == 9:
            raise Interrupt

    with pytest.raises(Interrupt):
        interrupted.run(progress=stop_at_nine)
    resumed = _search(cfg, tmp_path / 'cut', **options)
    resumed.run(resume=True)
    for key, value in reference.bank.state_dict().items():
        assert torch.equal(value, resumed.bank.state_dict()[key]), key
    assert resumed.active == reference.active and resumed.best == reference.best


def test_search_and_export_tools(tiny_search, tmp_path, cli):
    config, _ = tiny_search
    work = tmp_path / 'search'
    code, out, err = cli('tools/structure/search_structure.py', config, '--work-dir', work)
    assert code == 0, err
    assert 'additivity: Spearman' in out and (work / 'search.json').exists()
    code, out, err = cli('tools/structure/search_structure.py', config, '--work-dir', work)
    assert code == 1 and 'exists' in err  # never overwrites a finished search without --resume

    code, _, err = cli('tools/structure/export_structure.py', work, '--macs', '1K')
    assert code == 1 and 'smallest achievable' in err
    code, out, err = cli('tools/structure/export_structure.py', work, '--macs', '40M', '--out', tmp_path / 'export')
    assert code == 0, err
    assert 'slack' in out
    code, _, err = cli('tools/structure/export_structure.py', work, '--macs', '40M', '--out', tmp_path / 'export')
    assert code == 1 and '--force' in err

    code, out, err = cli('tools/structure/plot_structure.py', work, '--out', tmp_path / 'plots')
    assert code == 0, err
    for name in ('pareto', 'heatmap', 'structures', 'additivity'):
        assert (tmp_path / 'plots' / f'{name}.png').stat().st_size > 0

    # The exported config builds, initialises from the block-distilled checkpoint and classifies.
    student_cfg = Config.fromfile(str(tmp_path / 'export' / 'student.py'))
    student = build_model(student_cfg)
    student.init_weights()
    init = torch.load(tmp_path / 'export' / 'student_init.pth', weights_only=True)['state_dict']
    for key, value in student.state_dict().items():
        assert torch.equal(value, init[key]), key
    student.eval()
    assert student(torch.randn(2, 3, 32, 32), mode='tensor').shape == (2, 2)
    kd = build_model(Config.fromfile(str(tmp_path / 'export' / 'student_kd.py')))
    assert type(kd).__name__ == 'Distiller'

    # The calibrated predictor: 4 structures fine-tuned for one epoch, 2 held out; then selection with it.
    calibration = tmp_path / 'calibration'
    code, out, err = cli('tools/structure/calibrate_predictor.py', work, '--num', 4, '--held-out', 2, '--epochs', 1,
                         '--work-dir', calibration)
    assert code == 0, err
    assert 'Kendall tau' in out and 'cost: 4 fine-tunings' in out
    predictor = json.loads((calibration / 'predictor.json').read_text())
    assert len(predictor['weights']) == 4 and len(predictor['held_out']) == 2
    assert (calibration / 'predictor.png').stat().st_size > 0
    code, out, err = cli('tools/structure/calibrate_predictor.py', work, '--num', 4, '--held-out', 2, '--epochs', 1,
                         '--work-dir', calibration)
    assert code == 0 and 'fine-tune structure' not in out  # finished runs are reused
    code, out, err = cli('tools/structure/export_structure.py', work, '--macs', '40M', '--out',
                         tmp_path / 'export_predicted',
                         '--predictor', calibration / 'predictor.json')
    assert code == 0 and 'predicted accuracy' in out, err


def test_structured_backbone_runs_in_a_detector():
    cfg = load_config(os.path.join(ROOT, 'configs', 'demo', 'teacher_retinanet_r18_fpn_synthetic.py'))
    backbone = cfg.model.backbone
    cfg.model.backbone = dict(type='mmcompact.StructuredBackbone', backbone=backbone, blocks=dict(
        layer2=dict(type='InvertedResidual', in_channels=64, out_channels=128, stride=2, expand_ratio=3),
        layer3=dict(type='GhostBlock', in_channels=128, out_channels=256, stride=2),
        layer4=dict(type='Keep', in_channels=256, out_channels=512, stride=2, num_blocks=1)))
    detector = build_model(cfg).eval()
    feats = detector.extract_feat(torch.randn(1, 3, 128, 128))
    assert [f.shape[1] for f in feats] == [cfg.model.neck.out_channels] * len(feats)


def test_structured_backbone_names_a_wrong_block_path():
    cfg = dict(type='mmcompact.StructuredBackbone', backbone=dict(type='mmpretrain.ResNet', depth=18),
               blocks={'layer9': dict(type='Skip', in_channels=64, out_channels=64, stride=1)})
    with pytest.raises(KeyError, match="no module 'layer9'"):
        build_model(Config(dict(model=cfg)))


def test_search_runs_under_torchrun_with_two_cpu_processes(tiny_search, tmp_path):
    """torchrun + gloo: the candidates train as one DDP module; rank 0 writes the result."""
    config, _ = tiny_search
    result = torchrun_two_processes(['tools/structure/search_structure.py', config, '--work-dir', tmp_path / 'search',
                                     '--launcher', 'pytorch'], port=29667)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count('additivity: Spearman') == 1  # printed by rank 0 only
    assert (tmp_path / 'search' / 'search.json').exists()


def test_predictor_recovers_known_block_weights_and_selects_exactly():
    """Synthetic block scores and accuracies from known per-block weights (+ small noise): the ridge fit
    recovers the weights, ranks held-out structures like the truth, and selection with its prediction is
    the brute-force best predicted structure under the budget."""
    from mmcompact.structure import fit_predictor, rank_agreement
    rng = random.Random(0)
    scores = [[rng.uniform(0, 1) for _ in range(4)] for _ in range(5)]
    true_w, intercept = [-3.0, -1.0, -0.5, -2.0, -0.1], 50.0
    choices = [[rng.randrange(4) for _ in range(5)] for _ in range(60)]
    noise = [rng.gauss(0, 0.01) for _ in choices]
    acc = [intercept + sum(w * scores[b][c] for b, (w, c) in enumerate(zip(true_w, ch))) + e
           for ch, e in zip(choices, noise)]
    predictor = fit_predictor(scores, choices[:40], acc[:40], alpha=1e-6)
    assert predictor.weights == pytest.approx(true_w, abs=0.05) and predictor.intercept == pytest.approx(50, abs=0.1)
    agreement = rank_agreement(predictor.predict(scores, choices[40:]), acc[40:])
    assert agreement['kendall_tau'] > 0.9 and agreement['spearman'] > 0.97
    costs = [[[rng.uniform(1, 10)] for _ in range(4)] for _ in range(5)]
    budget = 0.5 * (sum(min(c[0] for c in row) for row in costs) + sum(max(c[0] for c in row) for row in costs))
    chosen = select(predictor.selection_scores(scores), costs, [budget])
    feasible = [ch for ch in itertools.product(range(4), repeat=5)
                if sum(costs[b][c][0] for b, c in enumerate(ch)) <= budget]
    best = max(feasible, key=lambda ch: predictor.predict(scores, [ch])[0])
    assert predictor.predict(scores, [chosen.choice])[0] == pytest.approx(predictor.predict(scores, [best])[0])


def test_search_teacher_normalises_inputs_as_training_does(tiny_search):
    """The block-wise distillation must feed the teacher the inputs it was trained on (the config's top-level
    data_preprocessor), else its features, the candidates and their init are fitted to 0-255 pixels."""
    _, cfg = tiny_search
    model, _ = build_teacher_and_space(cfg, search_settings(cfg))
    image = torch.full((3, 32, 32), 255, dtype=torch.uint8)
    inputs = model.data_preprocessor(dict(inputs=[image]), False)['inputs']
    mean, std = torch.tensor(cfg.data_preprocessor.mean), torch.tensor(cfg.data_preprocessor.std)
    assert torch.allclose(inputs[0, :, 0, 0], (255 - mean) / std, atol=1e-5)
