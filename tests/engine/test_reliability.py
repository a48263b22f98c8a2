"""Faults survived: SIGKILL + --resume gives the same weights, checkpoint writes are atomic, non-finite
losses are skipped or stop the run with a named term, poisoned checkpoints are never written."""
import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest
import torch
from conftest import ROOT, make_image_folder
from mmengine.model import BaseModel
from mmengine.runner import Runner, save_checkpoint

import mmcompact  # noqa: F401
from mmcompact.analysis import read_scalars
from mmcompact.checkpoint import safe_load
from mmcompact.data import make_coco_detection

DISTILL_RUN = """
_base_ = ['{root}/projects/studies/configs/ghostnetv3-0.5x_kd_synthetic_cls.py']
model = dict(teacher_checkpoint=None,
             student='{root}/projects/studies/configs/ghostnetv3-0.5x_synthetic_cls.py',
             teacher='{root}/projects/studies/configs/resnet18_synthetic_cls.py')
data_preprocessor = dict(num_classes=6)
train_dataloader = dict(batch_size=4, dataset=dict(data_root='{data}'))
val_dataloader = dict(batch_size=8, dataset=dict(data_root='{data}'))
test_dataloader = val_dataloader
train_cfg = dict(max_epochs=4, val_interval=4)
param_scheduler = [dict(type='CosineAnnealingLR', by_epoch=True, T_max=4, eta_min=1e-5)]
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=2),
                     logger=dict(type='LoggerHook', interval=1))
custom_hooks = [dict(type='EMAHook', momentum=0.01, priority='ABOVE_NORMAL'),
                dict(type='mmcompact.DistillLossWeightHook', schedule='cosine', min_factor=0.2),
                dict(type='mmcompact.RandomStateHook'),
                dict(type='mmcompact.NonFiniteLossHook')]
optim_wrapper = dict(type='mmcompact.NonFiniteGuardOptimWrapper')
randomness = dict(seed=0, deterministic=True)
"""


DETECTION_DISTILL_RUN = """
_base_ = ['{root}/configs/demo/student_retinanet_ghostnetv3-0.5x_kd_synthetic.py']
data_root = '{data}/'
model = dict(teacher_checkpoint=None)
train_dataloader = dict(batch_size=2, dataset=dict(data_root=data_root))
val_dataloader = dict(batch_size=4, dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val.json')
test_evaluator = val_evaluator
train_cfg = dict(max_iters=12, val_interval=6)
param_scheduler = [dict(type='CosineAnnealingLR', by_epoch=False, begin=0, end=12, eta_min=1e-5)]
default_hooks = dict(checkpoint=dict(interval=2, max_keep_ckpts=2), logger=dict(interval=1))
custom_hooks = [dict(type='EMAHook', momentum=0.01, priority='ABOVE_NORMAL'),
                dict(type='mmcompact.DistillLossWeightHook', schedule='cosine', min_factor=0.2),
                dict(type='mmcompact.RandomStateHook'),
                dict(type='mmcompact.NonFiniteLossHook')]
optim_wrapper = dict(type='mmcompact.NonFiniteGuardOptimWrapper')
randomness = dict(seed=0, deterministic=True)
"""


def _tool(name, *args):  # name: the path under tools/
    return subprocess.Popen([sys.executable, os.path.join(ROOT, 'tools', name), *map(str, args)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _kill_and_resume(tool, args, work_dir, first, final):
    """Runs ``tools/<tool> *args --work-dir`` twice at once: ``work_dir/reference`` uninterrupted, and
    ``work_dir/killed`` SIGKILLed at a random moment after it wrote ``first``, then run again with
    ``--resume`` until it writes ``final``."""
    reference = _tool(tool, *args, '--work-dir', work_dir / 'reference')
    killed = _tool(tool, *args, '--work-dir', work_dir / 'killed')
    deadline = time.time() + 300
    while not (work_dir / 'killed' / first).exists():
        assert killed.poll() is None and time.time() < deadline, killed.stderr.read()[-2000:]
        time.sleep(0.2)
    time.sleep(random.Random(os.getpid()).uniform(0.0, 2.0))  # a few iterations later, maybe mid-save
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert reference.wait() == 0, reference.stderr.read()[-2000:]
    assert not (work_dir / 'killed' / final).exists(), 'the run finished before it was killed: slow it down'
    resumed = _tool(tool, *args, '--work-dir', work_dir / 'killed', '--resume')
    assert resumed.wait() == 0, resumed.stderr.read()[-2000:]


def _assert_same_tensors(expected: dict, got: dict):
    assert expected.keys() == got.keys()
    for key in expected:
        assert torch.equal(expected[key], got[key]), key


def _kill_resume_and_compare(config, work_dir, first, final):
    """A training run killed after checkpoint ``first`` and resumed ends with bitwise the same raw and EMA
    weights (checkpoint ``final``) as an uninterrupted one, and logs the same losses and metrics."""
    _kill_and_resume('train.py', [config], work_dir, first, final)
    reference = safe_load(str(work_dir / 'reference' / final), map_location='cpu')
    resumed = safe_load(str(work_dir / 'killed' / final), map_location='cpu')
    for key in ('state_dict', 'ema_state_dict'):
        _assert_same_tensors(reference.get(key, {}), resumed.get(key, {}))
    expected, got = _logged_by_step(work_dir / 'reference'), _logged_by_step(work_dir / 'killed')
    assert got and set(got) <= set(expected)
    for step, values in got.items():
        assert values == {key: expected[step][key] for key in values}, step


def _logged_by_step(work_dir):
    """{step: {loss or metric name: value}} of the latest run in ``work_dir`` (train and val records)."""
    merged = {}
    for record in read_scalars(str(work_dir)):
        merged.setdefault(record['step'], {}).update(
            {k: v for k, v in record.items() if 'loss' in k or k.startswith(('coco/', 'accuracy/'))})
    return merged


SMALL_RUN = """
custom_imports = dict(imports=['mmcompact', 'slow_save'], allow_failed_imports=False)
default_scope = 'mmpretrain'
model = dict(type='ImageClassifier',
             backbone=dict(type='ResNet', depth=18, stem_channels=8, base_channels=8),
             neck=dict(type='GlobalAveragePooling'),
             head=dict(type='LinearClsHead', num_classes=2, in_channels=64, loss=dict(type='CrossEntropyLoss')),
             data_preprocessor=dict(type='ClsDataPreprocessor', num_classes=2, mean=[128] * 3, std=[64] * 3))
pipeline = [dict(type='LoadImageFromFile'), dict(type='RandomFlip', prob=0.5), dict(type='PackInputs')]
train_dataloader = dict(batch_size=4, num_workers=0, sampler=dict(type='InfiniteSampler', shuffle=True),
                        dataset=dict(type='CustomDataset', data_root='{data}', data_prefix='train',
                                     pipeline=pipeline))
train_cfg = dict(by_epoch=False, max_iters=8)
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.05, momentum=0.9))
default_hooks = dict(checkpoint=dict(type='mmcompact.CheckpointHook', interval=2, by_epoch=False,
                                     max_keep_ckpts=1),
                     logger=dict(type='LoggerHook', interval=1))
custom_hooks = [dict(type='mmcompact.RandomStateHook')]
randomness = dict(seed=0, deterministic=True)
"""


def test_kill_during_a_checkpoint_save_keeps_a_loadable_checkpoint_and_resumes_exactly(tmp_path):
    """max_keep_ckpts=1, SIGKILL (by PID) while iter_4.pth is half written: iter_2.pth is still there and
    last_checkpoint names it; --resume removes the dead write's temporary and ends bitwise equal to an
    uninterrupted run."""
    data = make_image_folder(tmp_path / 'data', per_class=8, size=40)
    config = tmp_path / 'run.py'
    config.write_text(SMALL_RUN.format(data=data))
    marker = tmp_path / 'saving'
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.dirname(__file__), ROOT]),
               MMCOMPACT_TEST_SLOW_SAVE='iter_4.pth', MMCOMPACT_TEST_SLOW_SAVE_MARKER=str(marker))
    train = [sys.executable, os.path.join(ROOT, 'tools', 'train.py'), str(config)]
    killed_dir, reference_dir = tmp_path / 'killed', tmp_path / 'reference'
    proc = subprocess.Popen(train + ['--work-dir', str(killed_dir)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while not marker.exists():
        assert proc.poll() is None and time.time() < deadline, proc.stderr.read()[-2000:]
        time.sleep(0.1)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    last = (killed_dir / 'last_checkpoint').read_text()
    assert os.path.basename(last) == 'iter_2.pth' and safe_load(last)['meta']['iter'] == 2
    assert [n for n in os.listdir(killed_dir) if n.startswith('.iter_4.pth') and n.endswith('.tmp')]
    assert not (killed_dir / 'iter_4.pth').exists()
    clean_env = dict(env, MMCOMPACT_TEST_SLOW_SAVE='')
    for args in (['--work-dir', str(killed_dir), '--resume'], ['--work-dir', str(reference_dir)]):
        done = subprocess.run(train + args, env=clean_env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-2000:]
    assert not [n for n in os.listdir(killed_dir) if n.endswith('.tmp')], 'stale temporary left behind'
    assert sorted(n for n in os.listdir(killed_dir) if n.endswith('.pth')) == ['iter_8.pth']
    _assert_same_tensors(safe_load(str(reference_dir / 'iter_8.pth'))['state_dict'],
                         safe_load(str(killed_dir / 'iter_8.pth'))['state_dict'])


def test_checkpoints_get_the_mode_of_a_plain_write_and_a_verified_hash(tmp_path):
    """Atomic writes respect the umask (not mkstemp's 0600); flipped bytes in a checkpoint are refused on
    load (torch does not check the zip CRC); files without a .sha256 (written elsewhere) still load."""
    from mmcompact.checkpoint import CorruptCheckpointError, save_atomic
    old = os.umask(0o027)
    try:
        path = save_atomic({'state_dict': {'w': torch.arange(1000.0)}}, str(tmp_path / 'a.pth'))
    finally:
        os.umask(old)
    assert os.stat(path).st_mode & 0o777 == 0o640
    data = bytearray(open(path, 'rb').read())
    offset = data.index(torch.arange(1000.0).numpy().tobytes()[:64]) + 100
    data[offset] ^= 0xFF
    open(path, 'wb').write(bytes(data))
    assert torch.load(path, weights_only=True)['state_dict']['w'][25] != 25.0  # torch loads it silently
    with pytest.raises(CorruptCheckpointError, match='does not match the SHA-256'):
        safe_load(path)
    os.unlink(path + '.sha256')
    assert safe_load(path)['state_dict']['w'].shape == (1000, )


@pytest.mark.parametrize('content,problem', [(b'', 'is empty'), (b'hello world\n',
                                                                 'not a PyTorch checkpoint|cannot be read'),
                                             ('truncated', 'cannot be read')])
def test_broken_checkpoint_files_give_one_clear_error(tmp_path, content, problem):
    from mmcompact.checkpoint import CorruptCheckpointError
    path = tmp_path / 'x.pth'
    if content == 'truncated':
        torch.save({'w': torch.ones(1000)}, path)
        path.write_bytes(path.read_bytes()[:2000])
    else:
        path.write_bytes(content)
    with pytest.raises(CorruptCheckpointError, match=problem):
        safe_load(str(path))


def test_distillation_run_killed_and_resumed_ends_with_the_same_weights(tmp_path):
    """Classification (epoch loop): re-param student, EMA, loss-weight schedule, random flips; SIGKILL at a
    random moment after the first epoch checkpoint, then --resume: bitwise the same final weights."""
    data = make_image_folder(tmp_path / 'data', per_class=8, size=64)
    config = tmp_path / 'run.py'
    config.write_text(DISTILL_RUN.format(root=ROOT, data=data))
    _kill_resume_and_compare(config, tmp_path, 'epoch_1.pth', 'epoch_4.pth')


def test_detection_distillation_run_killed_and_resumed_ends_with_the_same_weights(tmp_path):
    """Detection (iteration loop, which replays the data already trained on when it resumes): re-param
    GhostNetV3 RetinaNet student, PKD + head KD, EMA, loss-weight schedule, random flips, a validation in the
    middle; SIGKILL at a random moment after the first checkpoint, then --resume: bitwise the same."""
    data = tmp_path / 'coco'
    make_coco_detection(str(data), num_train=24, num_val=4, num_classes=3, size_range=(96, 128))
    config = tmp_path / 'run.py'
    config.write_text(DETECTION_DISTILL_RUN.format(root=ROOT, data=data))
    _kill_resume_and_compare(config, tmp_path, 'iter_2.pth', 'iter_12.pth')


def test_structure_search_killed_and_resumed_ends_with_the_same_result(tiny_search, tmp_path):
    """Block-wise distillation of every candidate, SIGKILLed after its first state save and resumed:
    bitwise the same candidate weights and optimizer state, and the same scores and costs in search.json."""
    config, _ = tiny_search
    _kill_and_resume('structure/search_structure.py', [config, '--cfg-options', 'structure_search.epochs=10',
                                             'structure_search.plateau=None'], tmp_path,
                     'search_state.pth', 'search.json')
    reference = safe_load(str(tmp_path / 'reference' / 'search_state.pth'))
    resumed = safe_load(str(tmp_path / 'killed' / 'search_state.pth'))
    _assert_same_tensors(reference['bank'], resumed['bank'])
    assert reference['history'] == resumed['history'] and reference['epoch'] == resumed['epoch'] == 10
    results = [json.loads((tmp_path / run / 'search.json').read_text()) for run in ('reference', 'killed')]
    for key in ('labels', 'costs', 'scores', 'history'):
        assert results[0][key] == results[1][key], key


def test_runner_checkpoint_writes_are_atomic(tmp_path, monkeypatch):
    path = str(tmp_path / 'epoch_1.pth')
    save_checkpoint({'state_dict': {'w': torch.ones(3)}}, path)

    def crash(fd):
        raise OSError('simulated crash before the rename')

    monkeypatch.setattr(os, 'fsync', crash)
    with pytest.raises(OSError, match='simulated'):
        save_checkpoint({'state_dict': {'w': torch.zeros(3)}}, path)
    assert torch.equal(safe_load(path)['state_dict']['w'], torch.ones(3))  # the previous one, intact
    assert sorted(os.listdir(tmp_path)) == ['epoch_1.pth']  # no temporary file left behind (the failed
    # write removed the old .sha256 first: a file without one loads unchecked, never with a stale one)


class ToyModel(BaseModel):
    """loss_task is NaN at the iterations listed in ``nan_at``."""

    def __init__(self, nan_at=()):
        super().__init__()
        self.linear = torch.nn.Linear(2, 1)
        self.nan_at, self.calls = set(nan_at), 0

    def forward(self, inputs, data_samples=None, mode='tensor'):
        self.calls += 1
        loss = self.linear(inputs).pow(2).mean()
        if self.calls in self.nan_at:
            loss = loss * float('nan')
        return dict(loss_task=loss, loss_aux=loss.detach() * 0)


def _toy_runner(tmp_path, model, action, max_skips=100):
    dataset = [dict(inputs=torch.ones(2)) for _ in range(8)]
    return Runner(
        model=model, work_dir=str(tmp_path), train_cfg=dict(by_epoch=False, max_iters=6),
        train_dataloader=dict(dataset=dataset, batch_size=2, sampler=dict(type='DefaultSampler', shuffle=False),
                              collate_fn=dict(type='default_collate')),
        optim_wrapper=dict(type='mmcompact.NonFiniteGuardOptimWrapper', optimizer=dict(type='SGD', lr=0.1)),
        custom_hooks=[dict(type='mmcompact.NonFiniteLossHook', action=action, max_skips=max_skips)],
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=100)),
        env_cfg=dict(dist_cfg=dict(backend='gloo')), experiment_name=f'toy_{action}_{time.time_ns()}')


def test_nonfinite_loss_is_skipped_and_counted(tmp_path):
    model = ToyModel(nan_at={3})
    runner = _toy_runner(tmp_path, model, 'skip')
    runner.train()
    assert torch.isfinite(model.linear.weight).all()
    assert runner.message_hub.get_scalar('train/nonfinite_skipped').current() == 1


def test_nonfinite_loss_stops_naming_the_term_and_iteration(tmp_path):
    runner = _toy_runner(tmp_path, ToyModel(nan_at={2}), 'stop')
    with pytest.raises(FloatingPointError, match=r'iteration 2: loss_task=nan'):
        runner.train()


def test_the_hook_without_the_guard_wrapper_names_the_config_key(tmp_path):
    runner = _toy_runner(tmp_path, ToyModel(), 'skip')
    runner.optim_wrapper = runner.build_optim_wrapper(dict(optimizer=dict(type='SGD', lr=0.1)))
    with pytest.raises(TypeError, match="optim_wrapper.type='mmcompact.NonFiniteGuardOptimWrapper'"):
        runner.train()


def test_too_many_skips_stop_the_run(tmp_path):
    runner = _toy_runner(tmp_path, ToyModel(nan_at={1, 2, 3}), 'skip', max_skips=2)
    with pytest.raises(FloatingPointError, match='more than max_skips=2'):
        runner.train()


class BNToyModel(BaseModel):
    """Linear -> BatchNorm1d; the input is multiplied by inf at the forward calls listed in ``inf_at``, which
    poisons the BN running statistics during the forward itself."""

    def __init__(self, inf_at=()):
        super().__init__()
        torch.manual_seed(0)
        self.linear = torch.nn.Linear(2, 3)
        self.bn = torch.nn.BatchNorm1d(3)
        self.inf_at, self.calls = set(inf_at), 0

    def forward(self, inputs, data_samples=None, mode='tensor'):
        self.calls += 1
        if self.calls in self.inf_at:
            inputs = inputs * float('inf')
        return dict(loss_task=self.bn(self.linear(inputs)).pow(2).mean())


def _bn_runner(work_dir, model, iters, resume=False):
    dataset = [dict(inputs=torch.tensor([float(i), 1.0 - i])) for i in range(4)]
    return Runner(
        model=model, work_dir=str(work_dir), train_cfg=dict(by_epoch=False, max_iters=iters),
        train_dataloader=dict(dataset=dataset, batch_size=4, sampler=dict(type='DefaultSampler', shuffle=False),
                              collate_fn=dict(type='default_collate')),
        optim_wrapper=dict(type='mmcompact.NonFiniteGuardOptimWrapper', optimizer=dict(type='SGD', lr=0.1)),
        resume=resume,
        custom_hooks=[dict(type='EMAHook', momentum=0.5, priority='ABOVE_NORMAL'),
                      dict(type='mmcompact.NonFiniteLossHook', action='skip', max_skips=1)],
        default_hooks=dict(checkpoint=dict(type='mmcompact.CheckpointHook', interval=iters, by_epoch=False)),
        env_cfg=dict(dist_cfg=dict(backend='gloo')), experiment_name=f'bn_toy_{time.time_ns()}')


def test_a_skipped_step_leaves_parameters_buffers_and_ema_as_they_were(tmp_path):
    """6 iterations with an Inf activation at the 3rd end exactly like 5 clean iterations (same batch each
    time): weights, BN running statistics and counters, and the EMA copy; the skip count is checkpointed and
    comes back on --resume, so max_skips holds across resumes."""
    skipped_run = _bn_runner(tmp_path / 'skipped', BNToyModel(inf_at={3}), 6)
    skipped_run.train()
    clean_run = _bn_runner(tmp_path / 'clean', BNToyModel(), 5)
    clean_run.train()
    _assert_same_tensors(clean_run.model.state_dict(), skipped_run.model.state_dict())
    ema = {type(h).__name__: h for h in skipped_run.hooks}['EMAHook'].ema_model.state_dict()
    clean_ema = {type(h).__name__: h for h in clean_run.hooks}['EMAHook'].ema_model.state_dict()
    _assert_same_tensors(clean_ema, ema)
    checkpoint = safe_load(str(tmp_path / 'skipped' / 'iter_6.pth'))
    clean_checkpoint = safe_load(str(tmp_path / 'clean' / 'iter_5.pth'))
    assert checkpoint['meta']['nonfinite_skipped'] == 1
    for key in ('state_dict', 'ema_state_dict'):  # (EMAHook writes the EMA weights as state_dict)
        _assert_same_tensors(clean_checkpoint[key], checkpoint[key])
    resumed = _bn_runner(tmp_path / 'skipped', BNToyModel(inf_at={1}), 7, resume=True)
    with pytest.raises(FloatingPointError, match='2 steps had non-finite losses.*max_skips=1'):
        resumed.train()  # the second skip in total exceeds max_skips=1


def test_a_checkpoint_with_nonfinite_weights_is_never_written(tmp_path):
    from mmcompact.engine import NonFiniteLossHook
    with pytest.raises(FloatingPointError, match="state_dict\\['w'\\]"):
        NonFiniteLossHook().before_save_checkpoint(None, {'state_dict': {'w': torch.tensor([1.0, float('inf')])}})
