"""Scale out on CPU: torchrun with 2 gloo processes gives the same result as one process with the same
global batch (distillation, tools/train.py under torchrun), the non-finite-loss guard skips a step on every
rank when only one rank sees a NaN, and moment fusion trains like separate branches under DDP."""
import subprocess
import sys

import torch
from conftest import ROOT, make_image_folder, torchrun_two_processes

from mmcompact.checkpoint import safe_load

# Logit KD into a ResNet-18 student with GroupNorm: its forward is per-sample, so 2 processes x 2 images and
# 1 process x 4 images see the same math (BatchNorm statistics are per process without SyncBN, and torch's
# SyncBatchNorm needs a GPU). Deterministic pipeline: random flips would draw differently per process.
KD_RUN = """
_base_ = ['{root}/projects/studies/configs/ghostnetv3-0.5x_kd_synthetic_cls.py']
student = dict(
    _delete_=True, type='ImageClassifier',
    backbone=dict(type='ResNet', depth=18, norm_cfg=dict(type='GN', num_groups=8)),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=2, in_channels=512, loss=dict(type='CrossEntropyLoss')))
teacher = dict(student, backbone=dict(type='ResNet', depth=18))  # BatchNorm: the teacher runs in eval mode
model = dict(student=student, teacher=teacher, teacher_checkpoint=None)
data_preprocessor = dict(num_classes=2)
pipeline = [dict(type='LoadImageFromFile'), dict(type='PackInputs')]
train_dataloader = dict(batch_size={batch_size}, sampler=dict(seed=0),
                        dataset=dict(data_root='{data}', pipeline=pipeline))
val_dataloader = dict(batch_size=8, dataset=dict(data_root='{data}'))
test_dataloader = val_dataloader
train_cfg = dict(max_epochs=2, val_interval=2)
optim_wrapper = dict(optimizer=dict(_delete_=True, type='SGD', lr=0.05, momentum=0.9, weight_decay=1e-4))
param_scheduler = [dict(type='CosineAnnealingLR', by_epoch=True, T_max=2, eta_min=1e-4)]
default_hooks = dict(checkpoint=dict(interval=2), logger=dict(interval=1))
randomness = dict(seed=0)
"""


def test_two_processes_match_one_process_with_the_same_global_batch(tmp_path):
    data = make_image_folder(tmp_path / 'data', per_class=8, size=32)  # 16 images: 4 steps of 4 per epoch
    for name, batch_size in (('single', 4), ('ddp', 2)):
        (tmp_path / f'{name}.py').write_text(KD_RUN.format(root=ROOT, data=data, batch_size=batch_size))
    single = subprocess.run([sys.executable, 'tools/train.py', tmp_path / 'single.py', '--work-dir',
                             tmp_path / 'single'], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert single.returncode == 0, single.stderr[-3000:]
    ddp = torchrun_two_processes(['tools/train.py', tmp_path / 'ddp.py', '--work-dir', tmp_path / 'ddp', '--launcher',
                     'pytorch'], port=29661)
    assert ddp.returncode == 0, ddp.stdout[-2000:] + ddp.stderr[-3000:]
    expected = safe_load(str(tmp_path / 'single' / 'epoch_2.pth'))['state_dict']
    got = safe_load(str(tmp_path / 'ddp' / 'epoch_2.pth'))['state_dict']
    assert expected.keys() == got.keys()
    for key in expected:
        # same up to float summation order (the all-reduce adds the two halves of each batch separately)
        torch.testing.assert_close(got[key], expected[key], rtol=1e-4, atol=1e-5, msg=key)


NAN_ON_ONE_RANK = """
import sys
import torch
from mmengine.dist import get_rank
from mmengine.model import BaseModel
from mmengine.runner import Runner
sys.path.insert(0, {root!r})
from mmcompact.cli import setup_launcher, shutdown_distributed
from mmengine.config import Config


class Toy(BaseModel):
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(2, 1)
        self.calls = 0

    def forward(self, inputs, data_samples=None, mode='tensor'):
        self.calls += 1
        loss = self.linear(inputs).pow(2).mean()
        if self.calls == 3 and get_rank() == 1:  # only rank 1 sees a NaN, at iteration 3
            loss = loss * float('nan')
        return dict(loss_task=loss)


cfg = Config(dict(
    model=Toy(), work_dir={work_dir!r}, train_cfg=dict(by_epoch=False, max_iters=6),
    train_dataloader=dict(dataset=[dict(inputs=torch.ones(2) * i) for i in range(16)], batch_size=2,
                          sampler=dict(type='DefaultSampler', shuffle=False),
                          collate_fn=dict(type='default_collate')),
    optim_wrapper=dict(type='mmcompact.NonFiniteGuardOptimWrapper', optimizer=dict(type='SGD', lr=0.05)),
    custom_hooks=[dict(type='mmcompact.NonFiniteLossHook', action='skip')],
    default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=6, by_epoch=False))))
setup_launcher(cfg, 'pytorch')
import mmcompact  # noqa
runner = Runner(model=cfg.model, work_dir=cfg.work_dir, train_cfg=cfg.train_cfg,
                train_dataloader=cfg.train_dataloader, optim_wrapper=cfg.optim_wrapper,
                custom_hooks=cfg.custom_hooks, default_hooks=cfg.default_hooks, launcher='pytorch',
                cfg=Config(dict(model_wrapper_cfg=cfg.model_wrapper_cfg)),
                env_cfg=dict(dist_cfg=dict(backend='gloo')))
runner.train()
model = runner.model.module
torch.save(dict(weight=model.linear.weight.detach(), skipped=runner.message_hub.get_scalar(
    'train/nonfinite_skipped').current()), {work_dir!r} + f'/rank{{get_rank()}}.pt')
del runner, model
shutdown_distributed()  # a gloo group left to the interpreter's teardown can abort a finished process
"""


def test_nonfinite_guard_skips_the_step_on_every_rank(tmp_path):
    script = tmp_path / 'nan_on_one_rank.py'
    script.write_text(NAN_ON_ONE_RANK.format(root=ROOT, work_dir=str(tmp_path)))
    result = torchrun_two_processes([script], port=29663)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    ranks = [torch.load(tmp_path / f'rank{r}.pt', weights_only=True) for r in (0, 1)]
    assert [r['skipped'] for r in ranks] == [1, 1]  # rank 0 had a finite loss, and skipped with rank 1
    assert torch.isfinite(ranks[0]['weight']).all() and torch.equal(ranks[0]['weight'], ranks[1]['weight'])


FUSED_AND_SEPARATE_UNDER_DDP = """
import sys
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
sys.path.insert(0, {root!r})
from mmcompact.models.backbones.ghostnetv3 import GhostNetV3
from mmcompact.reparam import RepConvBN

dist.init_process_group('gloo')
rank = dist.get_rank()
states = {{}}
for fusion in (False, True):
    torch.manual_seed(0)
    model = DistributedDataParallel(GhostNetV3(widen_factor=0.5, moment_fusion=fusion).double())
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for step in range(2):
        x = torch.randn(2, 3, 64, 64, dtype=torch.float64, generator=torch.Generator().manual_seed(10 * step + rank))
        optimizer.zero_grad()
        model(x)[0].square().mean().backward()
        optimizer.step()
    states[fusion] = model.module.state_dict()
    states[f'fused_modules_{{fusion}}'] = sum(m._fuse_moments() for m in model.module.modules()
                                           if isinstance(m, RepConvBN))
torch.save(states, {work_dir!r} + f'/rank{{rank}}.pt')
dist.destroy_process_group()
"""


def test_moment_fusion_trains_like_separate_branches_under_ddp(tmp_path):
    """The fused training path under DistributedDataParallel (2 gloo processes, each its own batch): after two
    SGD steps the weights and BatchNorm statistics equal those of separate branches, on both ranks."""
    script = tmp_path / 'fusion_ddp.py'
    script.write_text(FUSED_AND_SEPARATE_UNDER_DDP.format(root=ROOT, work_dir=str(tmp_path)))
    result = torchrun_two_processes([script], port=29665)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    ranks = [torch.load(tmp_path / f'rank{r}.pt', weights_only=True) for r in (0, 1)]
    assert any('branches.1.conv' in key for key in ranks[0][True])  # the training form, parallel branches
    for rank in ranks:  # the fused path really ran under DDP, and only where asked for
        assert rank['fused_modules_True'] > 0 and rank['fused_modules_False'] == 0
    for rank in ranks:
        for key, value in rank[False].items():
            torch.testing.assert_close(rank[True][key], value, rtol=1e-7, atol=1e-9, msg=key)
    # DDP keeps the weights of the ranks equal; BatchNorm statistics are each rank's own (no SyncBN)
    weights = [key for key in ranks[0][False] if not key.endswith(('running_mean', 'running_var'))]
    for key in weights:
        torch.testing.assert_close(ranks[1][True][key], ranks[0][True][key], rtol=1e-7, atol=1e-9, msg=key)
    assert not torch.equal(ranks[0][True]['stem.bn.running_mean'], ranks[1][True]['stem.bn.running_mean'])
