"""Bad input, generated (hypothesis): every case either works or fails with an error that names the
argument/key/value and what would fix it, before any training; never a bare traceback from inside torch.
Case counts per property are the ``max_examples`` below (README, Reliability)."""
import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mmcompact  # noqa: F401
from mmcompact.models.backbones.ghostnetv3 import MIN_INPUT_SIZE, GhostNetV3
from mmcompact.registry import CANDIDATES
from mmcompact.structure import InfeasibleBudget, Interface, build_candidate, select
from mmcompact.structure.api import SEARCH_KEYS, search_settings

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ERRORS = (ValueError, TypeError, KeyError)
numbers = st.one_of(st.integers(-4, 12), st.floats(-2, 10), st.just(float("nan")), st.text(max_size=3), st.none(),
                    st.booleans())


def _names_the_problem(err: Exception, *words: str) -> bool:
    return any(word in str(err) for word in words)


@FAST
@given(widen=numbers, out_indices=st.one_of(st.lists(st.integers(-3, 12), max_size=3), st.integers(0, 9)),
       frozen=st.integers(-3, 12), branches=st.integers(-1, 4))
def test_ghostnetv3_arguments(widen, out_indices, frozen, branches):
    try:
        model = GhostNetV3(widen_factor=widen, out_indices=out_indices, frozen_stages=frozen,
                           num_branches=branches)
    except ERRORS as err:
        assert _names_the_problem(err, 'widen_factor', 'out_indices', 'frozen_stages', 'num_branches'), err
        return
    outs = model.eval()(torch.zeros(1, 3, 64, 64))
    assert len(outs) == len(out_indices)


@settings(max_examples=40, deadline=None)
@given(h=st.integers(8, 120), w=st.integers(8, 120), channels=st.sampled_from([1, 3, 4]))
def test_ghostnetv3_input_sizes(h, w, channels):
    model = _small_ghostnet()
    x = torch.zeros(1, channels, h, w)
    if channels == 3 and min(h, w) >= MIN_INPUT_SIZE:
        assert model(x)[0].shape[1] == model.out_channels[0]
    else:
        with pytest.raises(ValueError, match=r'\(N, 3, H, W\).*resize'):
            model(x)


_CACHE = {}


def _small_ghostnet():
    if 'model' not in _CACHE:
        _CACHE['model'] = GhostNetV3(widen_factor=0.25).eval()
    return _CACHE['model']


candidate_types = st.sampled_from(sorted(CANDIDATES.module_dict) + ['Nope'])
option_names = st.sampled_from(['kernel_size', 'expand_ratio', 'width_ratio', 'num_blocks', 'se_ratio',
                                'num_branches', 'colour'])


@FAST
@given(kind=candidate_types, options=st.dictionaries(option_names, numbers, max_size=2),
       stride=st.sampled_from([1, 2]), channels=st.sampled_from([(8, 8), (8, 16)]))
def test_candidate_specs(kind, options, stride, channels):
    interface = Interface(*channels, stride)
    block = torch.nn.Sequential(torch.nn.Conv2d(8, channels[1], 3, stride, 1),
                                torch.nn.Conv2d(channels[1], channels[1], 3, 1, 1))
    try:
        module = build_candidate(dict(type=kind, **options), interface, block)
    except ERRORS as err:
        assert _names_the_problem(err, kind, *options), err
        return
    y = module.eval()(torch.zeros(1, 8, 16, 16))
    assert y.shape == (1, channels[1], 16 // stride, 16 // stride)


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_knapsack_inputs(data):
    blocks = data.draw(st.integers(1, 4))
    scores = [data.draw(st.lists(st.floats(0, 10), min_size=1, max_size=4)) for _ in range(blocks)]
    costs = [[[data.draw(st.floats(0, 1e6))] for _ in row] for row in scores]
    budget = data.draw(st.floats(-1e5, 4e6))
    try:
        result = select(scores, costs, [budget], resolution=data.draw(st.integers(1, 300)))
    except InfeasibleBudget as err:
        assert 'budget' in str(err)
        return
    assert result.cost[0] <= budget and math.isfinite(result.score)


@FAST
@given(extra=st.dictionaries(st.text(min_size=1, max_size=8), st.integers(), max_size=2),
       shape=st.lists(st.integers(-2, 300), max_size=4), drop=st.sampled_from([None, 'input_shape', 'candidates']))
def test_structure_search_settings(extra, shape, drop):
    from mmengine.config import Config
    section = dict(input_shape=shape, candidates=[dict(type='Keep')], **extra)
    if drop:
        section.pop(drop)
    try:
        search_settings(Config(dict(structure_search=section)))
    except ERRORS as err:
        assert 'structure_search' in str(err), err
        return
    assert set(section) <= SEARCH_KEYS and len(shape) == 3 and min(shape) > 0
