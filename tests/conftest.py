import importlib.util
import os
import subprocess
import sys

import pytest
import torch
from torch.nn.modules.batchnorm import _BatchNorm

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def randomize_bn(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Give every BatchNorm random affine parameters and running statistics, at the scale of a trained
    network (gains around 0.5-1.4, so that activations stay O(1) through 20+ blocks)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, _BatchNorm):
                n = m.num_features
                m.running_mean.copy_((torch.rand(n, generator=g) - 0.5) * 0.5)
                m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
                if m.weight is not None:
                    m.weight.copy_(torch.rand(n, generator=g) * 0.5 + 0.5)
                    m.bias.copy_((torch.rand(n, generator=g) - 0.5) * 0.4)
    return model


def run_tool(*args, cwd=ROOT):
    """Run ``python <args>`` in a fresh interpreter (for what only a new process shows)."""
    env = dict(os.environ, PYTHONWARNINGS='ignore')
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, env=env,
                          timeout=600)


@pytest.fixture
def cli(capsys, monkeypatch):
    """Call ``tools/<name>.py``'s ``main(argv)`` in this process (saves the 9 s import of a new one);
    returns (exit code, stdout, stderr)."""
    monkeypatch.chdir(ROOT)

    def call(name, *argv):
        spec = importlib.util.spec_from_file_location(f'tool_{name}', os.path.join(ROOT, 'tools', name))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        capsys.readouterr()
        code = module.main([str(a) for a in argv])
        out, err = capsys.readouterr()
        return code, out, err

    return call
