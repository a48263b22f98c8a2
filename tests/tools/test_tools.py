"""The tools through their CLIs (in process: same argv parsing, exit codes and messages)."""
import os

import pytest
import torch
from conftest import ROOT, randomize_bn, run_tool

from mmcompact.checkpoint import safe_load, save_atomic
from mmcompact.deploy import deploy_config
from mmcompact.reparam import max_abs_diff
from mmcompact.utils import build_model, load_config

CLS_CONFIG = os.path.join(ROOT, 'configs', 'ghostnetv3', 'ghostnetv3-0.5x_8xb128_in1k.py')


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """A 'trained' training-form GhostNetV3 0.5x checkpoint (random weights and BN statistics)."""
    torch.manual_seed(0)
    model = randomize_bn(build_model(load_config(CLS_CONFIG)))
    path = tmp_path_factory.mktemp('ckpt') / 'trained.pth'
    save_atomic({'state_dict': model.state_dict()}, str(path))
    return model.eval(), path


def test_fold_writes_a_checked_deploy_checkpoint(trained, tmp_path, cli):
    model, checkpoint = trained
    out = tmp_path / 'deploy.pth'
    code, stdout, stderr = cli('tools/deployment/fold.py', CLS_CONFIG, checkpoint, out, '--shape', 64, 64)
    assert code == 0, stderr
    assert 'max abs difference, folded vs original' in stdout and 'params: 3.395M -> 2.842M' in stdout
    deployed = build_model(deploy_config(load_config(CLS_CONFIG))[0]).eval()
    deployed.load_state_dict(safe_load(str(out))['state_dict'], strict=True)
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        assert max_abs_diff(model(x), deployed(x)) <= 1e-5
    before = out.stat().st_mtime_ns
    code, _, stderr = cli('tools/deployment/fold.py', CLS_CONFIG, checkpoint, out, '--shape', 64, 64)
    assert code == 1 and 'already exists' in stderr and out.stat().st_mtime_ns == before


def test_fold_refuses_bad_requests(trained, tmp_path, cli):
    _, checkpoint = trained
    size = checkpoint.stat().st_size
    code, _, stderr = cli('tools/deployment/fold.py', CLS_CONFIG, checkpoint, checkpoint, '--force')
    assert code == 1 and 'is the input checkpoint' in stderr and checkpoint.stat().st_size == size
    code, _, stderr = cli('tools/deployment/fold.py', CLS_CONFIG, tmp_path / 'missing.pth', tmp_path / 'o.pth')
    assert code == 1 and 'missing.pth' in stderr and 'does not exist' in stderr
    code, _, stderr = cli('tools/deployment/fold.py', tmp_path / 'nope.py', checkpoint, tmp_path / 'o.pth')
    assert code == 1 and 'nope.py' in stderr and 'does not exist' in stderr
    code, _, stderr = cli('tools/deployment/fold.py', CLS_CONFIG, checkpoint, tmp_path / 'o.pth', '--tolerance', 0,
                          '--shape', 64, 64)
    assert code == 1 and 'nothing was written' in stderr and not (tmp_path / 'o.pth').exists()


def test_fold_reports_a_model_with_nothing_to_fold(tmp_path, cli):
    config = tmp_path / 'resnet18.py'
    config.write_text("_base_ = 'mmpretrain::resnet/resnet18_8xb32_in1k.py'\n")
    checkpoint = save_atomic({'state_dict': build_model(load_config(str(config))).state_dict()},
                             str(tmp_path / 'r18.pth'))
    code, _, stderr = cli('tools/deployment/fold.py', config, checkpoint, tmp_path / 'o.pth')
    assert code == 1 and 'nothing to fold' in stderr and not (tmp_path / 'o.pth').exists()


def test_flops_cli_prints_both_forms_per_part(cli, tmp_path):
    code, stdout, stderr = cli('tools/analysis_tools/flops.py', CLS_CONFIG, '--shape', 224, 224)
    assert code == 0, stderr
    assert 'multiply-accumulates' in stdout
    total = next(line for line in stdout.splitlines() if line.startswith('total')).split()
    assert total[1:] == ['3.395M', '117.528M', '2.842M', '49.641M']
    assert '  stages.9' in stdout and 'head' in stdout
    code, stdout, _ = cli('tools/analysis_tools/flops.py', CLS_CONFIG, '--deploy', '--shape', 224, 224)
    assert code == 0 and 'MACs (deploy)' in stdout and '49.641M' in stdout
    code, _, stderr = cli('tools/analysis_tools/flops.py', tmp_path / 'none.py')
    assert code == 1 and 'does not exist' in stderr


def test_benchmark_cli_measures_against_timm(cli):
    pytest.importorskip('timm')
    code, stdout, stderr = cli('tools/analysis_tools/benchmark.py', CLS_CONFIG, '--batch-sizes', 1, '--shape', 64, 64,
                               '--iters', 1, '--warmup', 0, '--timm', 'ghostnetv3_050', '--repeats', 2)
    assert code == 0, stderr
    assert 'mmcompact folded' in stdout and 'timm ghostnetv3_050 folded' in stdout and 'x ref' in stdout
    spread = stdout[stdout.index('over 2 repeats'):].splitlines()
    assert [line.split()[-3:] for line in spread if line.startswith('timm')] == [['1.00', '1.00', '1.00']]
    code, stdout, stderr = cli('tools/analysis_tools/benchmark.py', CLS_CONFIG, '--train', '--batch-sizes', 2,
                               '--shape', 64, 64,
                               '--iters', 1, '--warmup', 0, '--timm', 'ghostnetv3_050', '--bounds', 'ghostnet_050',
                               '--amp', 'bf16')
    assert code == 0, stderr
    rows = {line.split('  ')[0]: line.split() for line in stdout.splitlines()}
    assert {'mmcompact train form', 'timm ghostnetv3_050 train form', 'timm ghostnet_050 (no re-param)'} <= set(rows)
    assert rows['timm ghostnetv3_050 train form'][-1] == '1.00'  # the reference of the ratios


def test_latency_breakdown_times_every_part_once_per_call(cli):
    from mmcompact.analysis import latency_by_part
    from mmcompact.models.backbones.ghostnetv3 import GhostNetV3
    from mmcompact.reparam import reparameterize_model
    folded = reparameterize_model(GhostNetV3(widen_factor=0.5).eval())
    parts = latency_by_part(folded, 1, depth=3, shape=(64, 64), warmup=0, iters=2)
    # stages is a ModuleList (never called): its blocks stand one level below the backbone
    assert parts['stages.*.*.ghost1']['calls'] == 16 and parts['stages.*.*.se']['calls'] == 7
    assert parts['stem.conv']['calls'] == 1 and 'stages.*.*.ghost1.dfc' not in parts  # parts never nest
    assert 0 < sum(p['ms'] for name, p in parts.items() if name != 'total') <= parts['total']['ms']
    assert latency_by_part(folded, 1, 4, (64, 64), 0, 1)['stages.*.*.ghost1.dfc']['calls'] == 14
    code, stdout, stderr = cli('tools/analysis_tools/benchmark.py', CLS_CONFIG, '--breakdown', 5, '--batch-sizes', 1,
                               '--shape', 64, 64,
                               '--iters', 1, '--warmup', 0, '--timm', 'none')
    assert code == 0, stderr
    rows = {line.split()[0]: line.split() for line in stdout.splitlines() if line.startswith('backbone')}
    assert rows['backbone.stages.*.*.ghost1.dfc'][1] == '14' and rows['backbone.stages.*.*.dw.fused'][2] == '-'


def test_inference_is_timed_without_autograd_and_training_with_it_and_amp_autocasts():
    from mmcompact.analysis import measure_latency, measure_train_step
    seen = []

    class Probe(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(8, 2)

        def forward(self, x):
            seen.append((torch.is_grad_enabled(), torch.is_autocast_enabled('cpu')
                         and torch.get_autocast_dtype('cpu')))
            return self.linear(x.mean((2, 3)).repeat(1, 3)[:, :8])

    measure_latency({'probe': Probe()}, 2, (4, 4), warmup=0, iters=1)
    measure_train_step({'probe': Probe()}, 2, (4, 4), warmup=0, iters=1)
    assert seen == [(False, False), (True, False)]
    seen.clear()
    measure_latency({'probe': Probe()}, 2, (4, 4), warmup=0, iters=1, amp='bf16')
    results = measure_train_step({'probe': Probe()}, 2, (4, 4), warmup=0, iters=1, amp='fp16')  # + GradScaler
    assert seen == [(False, torch.bfloat16), (True, torch.float16)] and results['probe']['ms'] > 0


def test_demo_main_job_runs_in_a_fresh_process(tmp_path):
    """The quick start, at a toy size: data, teacher, plain and recipe students, evaluation, fold, the
    comparison table (both students at one deploy cost), plots, and the measured study labelled as such; one
    line per step on the console, each step's output in a log in its folder."""
    result = run_tool('tools/misc/demo.py', '--work-dir', str(tmp_path), '--iters', '4', '--teacher-iters', '4',
                      '--num-train', '8', '--num-val', '4')
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert 'max abs difference, folded vs original' in (tmp_path / 'student' / 'fold.log').read_text()
    assert len(out[:out.index('[7/7] summary')].splitlines()) <= 12  # quiet: one line per step
    for log in ('logs/data.log', 'teacher/train.log', 'plain_student/train.log', 'student/train.log',
                'eval/evaluation.log'):
        assert (tmp_path / log).stat().st_size > 0, log
    summary = out[out.index('[7/7] summary'):]
    rows = {line.split('  ')[0]: line.split('  ') for line in summary.splitlines()[1:7]}
    rows = {name: [cell.strip() for cell in cells if cell.strip()] for name, cells in rows.items()}
    assert {'teacher', 'plain student', 'recipe student', 'recipe student deploy'} <= set(rows)
    # folding keeps the mAP exactly (same detections); the students share one deploy network
    assert rows['recipe student'][-2:] == rows['recipe student deploy'][-2:]
    assert rows['plain student'][1:3] == rows['recipe student'][1:3] == rows['recipe student deploy'][1:3]
    assert rows['teacher'][2] != rows['plain student'][2]
    assert 'Not this run: the measured recipe study' in out
    timing = out[out.index('where the time went'):].splitlines()
    for stage in ('teacher', 'plain student', 'recipe student'):  # wall minutes and logged s / iteration
        cells = next(line for line in timing if line.startswith(stage + ' ')).split()
        assert cells[-2] == 'min' and float(cells[-3]) > 0 and float(cells[-1]) > 0, cells
    for name in ('loss_curves.png', 'map.png', 'map_vs_flops.png', 'student/student_deploy.pth',
                 'plain_student/iter_4.pth'):
        assert (tmp_path / name).exists(), name


def test_demo_scene_objects_fall_back_to_shapes_and_say_so(tmp_path, monkeypatch):
    """--objects: shapes as asked; Fashion-MNIST items from data/fashion_mnist where it is prepared; auto
    without the files says it uses shapes, fashion-mnist without them is an error naming the fix."""
    import importlib.util

    import numpy as np

    import mmcompact.data.fashion_mnist as fashion_mnist
    spec = importlib.util.spec_from_file_location('demo_under_test', os.path.join(ROOT, 'tools', 'misc', 'demo.py'))
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    monkeypatch.setattr(demo, 'ROOT', str(tmp_path))
    monkeypatch.setattr(fashion_mnist, 'DEBIAN_DIR', str(tmp_path / 'no_package'))
    assert demo.scene_objects('shapes') == (None, None, 'shapes')
    folder, classes, note = demo.scene_objects('auto')
    assert folder is None and classes is None and note.startswith('shapes (no Fashion-MNIST files in')
    with pytest.raises(FileNotFoundError, match='--objects fashion-mnist: no Fashion-MNIST files .* --objects shapes'):
        demo.scene_objects('fashion-mnist')
    prepared = tmp_path / 'data' / 'fashion_mnist'
    prepared.mkdir(parents=True)
    for name in fashion_mnist.UNPACKED_MD5:
        (prepared / name).write_bytes(np.zeros(16, np.uint8).tobytes())
    folder, classes, note = demo.scene_objects('auto')
    assert folder == str(prepared) and classes == ('trouser', 'bag', 'sneaker') and 'trouser, bag, sneaker' in note
