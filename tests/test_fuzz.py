"""Bad input, generated (hypothesis): every case either works or fails with an error that names the
argument/key/value and what would fix it, before any training; never a bare traceback from inside torch.
Case counts per property are the ``max_examples`` below (README, Reliability)."""
import math
import os

import pytest
import torch
from conftest import ROOT
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mmcompact  # noqa: F401
from mmcompact.models.backbones.ghostnetv3 import MIN_INPUT_SIZE, GhostNetV3
from mmcompact.registry import CANDIDATES
from mmcompact.structure import InfeasibleBudget, Interface, build_candidate, select
from mmcompact.structure.pipeline import SEARCH_KEYS, search_settings

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
        result = select(scores, costs, [budget])
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


def _valid_coco() -> dict:
    return dict(
        images=[dict(id=1, file_name='a.png', width=64, height=48), dict(id=2, file_name='b.png', width=32,
                                                                         height=32)],
        annotations=[dict(id=1, image_id=1, category_id=1, bbox=[2, 3, 10, 12], area=120, iscrowd=0,
                          segmentation=[[2, 3, 12, 3, 12, 15, 2, 15]]),
                     dict(id=2, image_id=1, category_id=2, bbox=[20, 5, 8.5, 9], area=76.5, iscrowd=0),
                     dict(id=3, image_id=2, category_id=1, bbox=[0, 0, 31, 31], area=961, iscrowd=0)],
        categories=[dict(id=1, name='circle'), dict(id=2, name='square')])


junk = st.one_of(st.none(), st.booleans(), st.integers(-5, 70), st.floats(allow_nan=True, allow_infinity=True),
                 st.text(max_size=4), st.lists(st.integers(-3, 70), max_size=9),
                 st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))
SECTIONS = ('images', 'annotations', 'categories')
ENTRY_KEYS = ('id', 'file_name', 'width', 'height', 'image_id', 'category_id', 'bbox', 'area', 'iscrowd',
              'segmentation', 'name')


@st.composite
def malformed_coco(draw):
    """A valid two-image COCO file with 1-3 random mutations: sections or entries replaced by junk, keys
    deleted or given junk values, entries duplicated."""
    data = _valid_coco()
    for _ in range(draw(st.integers(1, 3))):
        section = draw(st.sampled_from(SECTIONS))
        kind = draw(st.sampled_from(['section', 'drop section', 'entry', 'drop key', 'value', 'duplicate']))
        entries = data.get(section)
        if kind == 'section':
            data[section] = draw(junk)
        elif kind == 'drop section':
            data.pop(section, None)
        elif isinstance(entries, list) and entries:
            index = draw(st.integers(0, len(entries) - 1))
            if kind == 'entry':
                entries[index] = draw(junk)
            elif kind == 'duplicate':
                entries.append(entries[index])
            elif isinstance(entries[index], dict):
                key = draw(st.sampled_from(ENTRY_KEYS))
                if kind == 'drop key':
                    entries[index].pop(key, None)
                else:
                    entries[index] = dict(entries[index], **{key: draw(junk)})
    return data


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(data=malformed_coco(), classes=st.sampled_from([None, ('circle', 'square'), ('circle', 'hexagon')]))
def test_malformed_coco_annotation_files(tmp_path, data, classes):
    """Every file either passes the check and then loads in mmdet's CocoDataset (every sample's data info
    parses), or is refused with a CocoFormatError naming the file and the entry/key, before any training."""
    import json

    from mmdet.datasets import CocoDataset

    from mmcompact.data import CocoFormatError, check_coco_file
    path = tmp_path / 'instances.json'
    path.write_text(json.dumps(data))
    try:
        check_coco_file(str(path), classes)
    except CocoFormatError as err:
        assert str(path) in str(err) and _names_the_problem(err, *SECTIONS, 'JSON', 'classes', 'object'), err
        return
    dataset = CocoDataset(ann_file=str(path), data_prefix=dict(img=str(tmp_path)), pipeline=[],
                          metainfo=dict(classes=classes or ('circle', 'square')), filter_cfg=None,
                          serialize_data=False)
    for index in range(len(dataset)):
        info = dataset.get_data_info(index)
        assert all(0 <= instance['bbox_label'] < 2 for instance in info['instances'])


def test_coco_annotation_without_area_is_refused(tmp_path):
    """Found by the fuzz test above: mmdet's CocoDataset raised KeyError 'area' on a file the check passed."""
    import json

    from mmcompact.data import CocoFormatError, check_coco_file
    data = _valid_coco()
    del data['annotations'][0]['area']
    path = tmp_path / 'instances.json'
    path.write_text(json.dumps(data))
    with pytest.raises(CocoFormatError, match=r"annotations\[0\] \(id 1\): 'area' is missing"):
        check_coco_file(str(path))


def test_coco_file_that_is_not_json_or_missing(tmp_path):
    from mmcompact.data import CocoFormatError, check_coco_file
    path = tmp_path / 'broken.json'
    path.write_text('{"images": [')
    with pytest.raises(CocoFormatError, match='not valid JSON'):
        check_coco_file(str(path))
    with pytest.raises(FileNotFoundError, match='data_root and ann_file'):
        check_coco_file(str(tmp_path / 'missing.json'))


def test_train_and_test_tools_refuse_a_malformed_coco_file_before_building_anything(tmp_path, cli):
    import json

    from mmcompact.cli import coco_data_options
    config = os.path.join(ROOT, 'configs', 'demo', 'student_retinanet_ghostnetv3-0.5x_synthetic.py')
    (tmp_path / 'annotations').mkdir()
    broken = _valid_coco()
    broken['annotations'][1]['bbox'] = [20, 5, 8.5]
    for split in ('train', 'val'):
        (tmp_path / 'annotations' / f'instances_{split}.json').write_text(json.dumps(broken))
    options = [f'{k}={v}' for k, v in coco_data_options(str(tmp_path)).items()]
    code, _, err = cli('tools/train.py', config, '--work-dir', tmp_path / 'work', '--cfg-options', *options)
    assert code == 1 and "train_dataloader.dataset.ann_file" in err and "annotations[1] (id 2): 'bbox'" in err
    assert not (tmp_path / 'work').exists()  # refused before the runner made anything
    code, _, err = cli('tools/test.py', config, tmp_path / 'model.pth', '--cfg-options', *options)
    assert code == 1 and 'test_dataloader.dataset.ann_file' in err and 'x, y, width, height' in err
