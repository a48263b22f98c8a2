"""The package's architecture holds: layers import downward only (import-linter, contract in .importlinter),
and tools are thin CLIs that never import each other."""
import ast
import os
import subprocess
import sys

from conftest import ROOT


def test_layers_import_downward_only():
    lint = os.path.join(os.path.dirname(sys.executable), 'lint-imports')
    result = subprocess.run([lint, '--config', os.path.join(ROOT, '.importlinter'), '--no-cache'], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert 'Contracts: 1 kept, 0 broken.' in result.stdout


def test_the_layer_check_catches_an_upward_import(tmp_path):
    """The contract is live: a copy of the package with one upward import (reparam -> structure) fails."""
    import shutil
    shutil.copytree(os.path.join(ROOT, 'mmcompact'), tmp_path / 'mmcompact')
    shutil.copy(os.path.join(ROOT, '.importlinter'), tmp_path / '.importlinter')
    with open(tmp_path / 'mmcompact' / 'reparam' / 'fuse.py', 'a') as f:
        f.write('\nfrom ..structure import knapsack  # noqa\n')
    lint = os.path.join(os.path.dirname(sys.executable), 'lint-imports')
    result = subprocess.run([lint, '--config', str(tmp_path / '.importlinter'), '--no-cache'], cwd=tmp_path,
                            capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(tmp_path)))
    assert result.returncode != 0 and 'mmcompact.reparam.fuse -> mmcompact.structure' in result.stdout


def test_tools_never_import_tools():
    tools_dir = os.path.join(ROOT, 'tools')
    names = {f[:-3] for f in os.listdir(tools_dir) if f.endswith('.py')}
    for name in sorted(names):
        tree = ast.parse(open(os.path.join(tools_dir, f'{name}.py')).read())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                imported = {alias.name.split('.')[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                imported = {(node.module or '').split('.')[0]}
            else:
                continue
            assert not imported & names, f'tools/{name}.py imports tools/{imported & names}: move shared code into mmcompact'
        assert 'sys.path' not in ast.unparse(tree), f'tools/{name}.py edits sys.path'
