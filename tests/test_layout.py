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


def tool_files():
    """Every command-line script: tools/ (grouped in folders) and the study drivers of projects/."""
    found = []
    for top in ('tools', 'projects'):
        for folder, _, files in os.walk(os.path.join(ROOT, top)):
            if os.sep + 'configs' not in folder:
                found += [os.path.join(folder, f) for f in files if f.endswith('.py')]
    return sorted(found)


def test_tools_never_import_tools():
    names = {os.path.basename(f)[:-3] for f in tool_files()}
    assert {'train', 'test', 'fold', 'recipe_study'} <= names
    for path in tool_files():
        tree = ast.parse(open(path).read())
        name = os.path.relpath(path, ROOT)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                imported = {alias.name.split('.')[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                imported = {(node.module or '').split('.')[0]}
            else:
                continue
            assert not imported & names, f'{name} imports {imported & names}: move shared code into mmcompact'
        assert 'sys.path' not in ast.unparse(tree), f'{name} edits sys.path'


def test_every_main_is_short():
    """A tool's main() reads as the steps it runs (about 60 lines at most); the work is in named functions."""
    for path in tool_files():
        for node in ast.parse(open(path).read()).body:
            if isinstance(node, ast.FunctionDef) and node.name == 'main':
                lines = node.end_lineno - node.lineno + 1
                assert lines <= 60, f'{os.path.relpath(path, ROOT)}: main() is {lines} lines; split it into steps'


def test_product_configs_stand_alone():
    """configs/ (what the wheel ships) never inherits from or names the studies' configs or work_dirs, and
    nothing shipped points outside the repository."""
    import glob
    for path in glob.glob(os.path.join(ROOT, 'configs', '**', '*.py'), recursive=True):
        code = '\n'.join(line for line in open(path).read().splitlines() if not line.lstrip().startswith('#'))
        name = os.path.relpath(path, ROOT)
        assert 'projects/' not in code and 'study/' not in code, f'{name} uses a study config'
        assert 'work_dirs' not in code, f'{name} names a work_dirs path'
    for path in glob.glob(os.path.join(ROOT, 'mmcompact', '**', '*.py'), recursive=True) + \
            [os.path.join(ROOT, 'README.md')]:
        assert '../shared' not in open(path).read(), f'{os.path.relpath(path, ROOT)} points outside the repository'
