"""Every config (shipped, and the studies' under projects/) builds and runs one forward pass on a tiny input
(teacher checkpoints left out)."""
import glob
import os

import pytest
import torch
from conftest import ROOT

from mmcompact.utils import build_model, detection_inputs, load_config

CONFIGS = sorted(
    os.path.relpath(p, ROOT) for pattern in (('configs', '**', '*.py'), ('projects', '*', 'configs', '**', '*.py'))
    for p in glob.glob(os.path.join(ROOT, *pattern), recursive=True)
    if '_base_' not in p and not p.endswith('_runtime.py'))


def tensors(out):
    """Every tensor of a nested model output (tuples/lists of feature levels)."""
    if isinstance(out, torch.Tensor):
        return [out]
    return [t for item in out for t in tensors(item)]


def test_every_config_is_covered():
    assert len(CONFIGS) >= 20


@pytest.mark.parametrize('config', CONFIGS)
def test_config_builds_and_runs_forward(config):
    cfg = load_config(os.path.join(ROOT, config))
    if 'teacher_checkpoint' in cfg.model:
        cfg.model.teacher_checkpoint = None
    model = build_model(cfg)
    model.eval()
    x = torch.randn(1, 3, 64, 96)
    # two-stage detectors need image metadata even in tensor mode (their RoI head runs on proposals)
    samples = detection_inputs(1, (64, 96))[1] if hasattr(model, 'roi_head') else None
    with torch.no_grad():
        out = model(x, samples, mode='tensor')
    assert all(torch.isfinite(t).all() for t in tensors(out))
