"""MMEngine's own checkpoints load with weights_only=True; anything else is refused, never executed."""
import argparse
import os

import pytest
import torch
from mmengine.evaluator import BaseMetric
from mmengine.model import BaseModel
from mmengine.runner import Runner, load_checkpoint
from torch import nn

import mmcompact  # noqa: F401  (installs the allow-list)
from mmcompact.checkpoint import UnsafeCheckpointError, allow_globals, install, safe_load, save_atomic


class TinyModel(BaseModel):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 2)
        self.bn = nn.BatchNorm1d(2)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        inputs = torch.stack(inputs) if isinstance(inputs, (list, tuple)) else inputs
        out = self.bn(self.linear(inputs))
        if mode == 'loss':
            return dict(loss=out.square().mean())
        return [dict(score=o) for o in out] if mode == 'predict' else out


class TinyData(torch.utils.data.Dataset):
    metainfo = dict(classes=('a', 'b'))

    def __len__(self):
        return 8

    def __getitem__(self, i):
        return dict(inputs=torch.full((4, ), float(i)))


class TinyMetric(BaseMetric):
    def process(self, data_batch, data_samples):
        self.results += [float(s['score'].sum()) for s in data_samples]

    def compute_metrics(self, results):
        return dict(score=sum(results) / len(results))


def make_runner(work_dir, max_epochs=2, **kwargs):
    loader = dict(dataset=TinyData(), batch_size=4, sampler=dict(type='DefaultSampler', shuffle=True),
                  collate_fn=dict(type='default_collate'))
    return Runner(
        model=TinyModel(), work_dir=str(work_dir), train_dataloader=loader, val_dataloader=loader,
        val_evaluator=[TinyMetric()], val_cfg=dict(),
        train_cfg=dict(by_epoch=True, max_epochs=max_epochs, val_interval=1),
        optim_wrapper=dict(optimizer=dict(type='AdamW', lr=0.01)),
        param_scheduler=[dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=2),
                         dict(type='CosineAnnealingLR', by_epoch=True, T_max=4)],
        custom_hooks=[dict(type='EMAHook')],
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=1, save_best='score',
                                           rule='greater')),
        randomness=dict(seed=1), default_scope='mmengine', **kwargs)


@pytest.fixture(scope='module')
def runner_checkpoint(tmp_path_factory):
    work_dir = tmp_path_factory.mktemp('runner')
    make_runner(work_dir).train()
    return work_dir


def test_mmengine_checkpoints_load_weights_only(runner_checkpoint):
    path = str(runner_checkpoint / 'epoch_2.pth')
    checkpoint = torch.load(path, weights_only=True)  # torch's default, through the allow-list
    assert {'meta', 'state_dict', 'message_hub', 'optimizer', 'param_schedulers',
            'ema_state_dict'} <= set(checkpoint)
    history = checkpoint['message_hub']['log_scalars']['train/loss']
    assert len(history.data[0]) > 0 and history.mean() == history.mean()  # HistoryBuffer works
    model = TinyModel()
    load_checkpoint(model, path, map_location='cpu', strict=True)
    assert torch.equal(model.linear.weight, checkpoint['state_dict']['linear.weight'])


def test_runner_resumes_and_loads_from(runner_checkpoint, tmp_path):
    resumed = make_runner(runner_checkpoint, max_epochs=3, resume=True)
    resumed.train()
    assert resumed.epoch == 3
    start = make_runner(tmp_path, max_epochs=1, load_from=str(runner_checkpoint / 'epoch_2.pth'))
    start.train()


def _malicious(marker):
    class Payload:
        def __reduce__(self):
            return (os.system, (f'touch {marker}', ))
    return Payload()


def test_malicious_pickle_is_refused_everywhere_and_never_executed(tmp_path):
    marker = tmp_path / 'pwned'
    path = str(tmp_path / 'evil.pth')
    torch.save({'state_dict': TinyModel().state_dict(), 'meta': _malicious(marker)}, path)
    with pytest.raises(UnsafeCheckpointError, match=r"global '(posix|os|nt)\.system'.*allow_globals"):
        safe_load(path)
    with pytest.raises(UnsafeCheckpointError, match=r'(posix|os|nt)\.system'):
        load_checkpoint(TinyModel(), path, map_location='cpu')
    with pytest.raises(UnsafeCheckpointError):
        make_runner(tmp_path / 'wd', max_epochs=1, load_from=path).train()
    with pytest.raises(Exception):
        torch.load(path)
    assert not marker.exists()


class _GetattrPayload:
    def __reduce__(self):
        from mmengine.logging import HistoryBuffer
        return (getattr, (HistoryBuffer, '__init__'))


def test_getattr_is_limited_to_history_buffer_statistics(tmp_path):
    path = str(tmp_path / 'getattr.pth')
    torch.save({'x': _GetattrPayload()}, path)
    with pytest.raises(UnsafeCheckpointError, match="getattr\\(HistoryBuffer, '__init__'\\)"):
        safe_load(path)


def test_trusted_globals_can_be_allowed_explicitly(tmp_path):
    path = save_atomic({'args': argparse.Namespace(lr=0.1)}, str(tmp_path / 'ns.pth'))
    with pytest.raises(UnsafeCheckpointError, match=r"argparse\.Namespace"):
        safe_load(path)
    try:
        allow_globals(['argparse.Namespace'])
        assert safe_load(path)['args'].lr == 0.1
    finally:
        torch.serialization.clear_safe_globals()
        install()
    with pytest.raises(UnsafeCheckpointError):
        safe_load(path)
    with pytest.raises(ValueError, match='cannot import'):
        allow_globals(['argparse.NoSuchThing'])


def test_save_atomic_never_clobbers(tmp_path):
    path = str(tmp_path / 'a.pth')
    save_atomic({'x': torch.ones(1)}, path)
    with pytest.raises(FileExistsError, match='--force'):
        save_atomic({'x': torch.zeros(1)}, path)
    assert torch.equal(safe_load(path)['x'], torch.ones(1))
    save_atomic({'x': torch.zeros(1)}, path, overwrite=True)
    assert torch.equal(safe_load(path)['x'], torch.zeros(1))
    assert sorted(os.listdir(tmp_path)) == ['a.pth', 'a.pth.sha256']  # no temporary files left behind
