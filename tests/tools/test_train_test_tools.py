"""tools/train.py -> tools/test.py -> tools/deployment/fold.py -> tools/test.py on the deploy form, end to end on a
tiny generated image-folder dataset (the normal MMEngine runner, mmpretrain's CustomDataset)."""
import pytest
from conftest import ROOT, make_image_folder

CONFIG = '''
_base_ = ['{root}/configs/ghostnetv3/ghostnetv3-0.5x_8xb128_in1k.py']
model = dict(head=dict(num_classes=2, topk=(1, )))
data_preprocessor = dict(num_classes=2)
pipeline = [dict(type='LoadImageFromFile'), dict(type='Resize', scale=(48, 48)), dict(type='PackInputs')]
def _loader(split):
    return dict(batch_size=4, num_workers=0, persistent_workers=False,
                sampler=dict(type='DefaultSampler', shuffle=split == 'train'),
                dataset=dict(_delete_=True, type='CustomDataset', data_root='{data}', data_prefix=split,
                             pipeline=pipeline))
train_dataloader = _loader('train')
val_dataloader = _loader('val')
test_dataloader = _loader('val')
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_evaluator = val_evaluator
train_cfg = dict(by_epoch=True, max_epochs=2, val_interval=1)
optim_wrapper = dict(optimizer=dict(lr=0.01))
default_hooks = dict(logger=dict(interval=1))
'''


@pytest.fixture(scope='module')
def tiny_config(tmp_path_factory):
    root = tmp_path_factory.mktemp('tiny')
    make_image_folder(root / 'data')
    config = root / 'tiny_ghostnetv3.py'
    config.write_text(CONFIG.format(root=ROOT, data=root / 'data'))
    return config, root


def test_train_test_fold_test(tiny_config, cli):
    config, root = tiny_config
    work_dir = root / 'work'
    code, _, stderr = cli('tools/train.py', config, '--work-dir', work_dir)
    assert code == 0, stderr
    checkpoint = work_dir / 'epoch_2.pth'
    assert checkpoint.exists()
    code, stdout, stderr = cli('tools/test.py', config, checkpoint, '--work-dir', work_dir / 'test')
    assert code == 0, stderr
    accuracy = float(stdout.split('accuracy/top1: ')[1].split()[0])
    deploy = root / 'deploy.pth'
    code, _, stderr = cli('tools/deployment/fold.py', config, checkpoint, deploy, '--shape', 48, 48)
    assert code == 0, stderr
    code, stdout, stderr = cli('tools/test.py', config, deploy, '--work-dir', work_dir / 'test_deploy',
                               '--cfg-options', 'model.backbone.deploy=True')
    assert code == 0, stderr
    assert float(stdout.split('accuracy/top1: ')[1].split()[0]) == accuracy
    # the wrong checkpoint for a config is an error naming the config that fits, never a random model's metric
    code, _, stderr = cli('tools/test.py', config, deploy, '--work-dir', work_dir / 'wrong')
    assert code == 1 and 'checkpoint is folded' in stderr and 'deploy config' in stderr, stderr
    code, _, stderr = cli('tools/test.py', config, checkpoint, '--work-dir', work_dir / 'wrong2',
                          '--cfg-options', 'model.backbone.deploy=True')
    assert code == 1 and 'training form' in stderr and 'tools/deployment/fold.py' in stderr, stderr
    code, stdout, stderr = cli('tools/test.py', config, deploy, '--work-dir', work_dir / 'partial', '--allow-partial')
    assert code == 0 and 'accuracy/top1' in stdout, stderr  # the explicit opt-out
    code, _, stderr = cli('tools/train.py', config, '--work-dir', work_dir / 'load_from', '--cfg-options',
                          f'load_from={deploy}')
    assert code == 1 and 'load_from' in stderr and 'checkpoint is folded' in stderr, stderr
    code, _, stderr = cli('tools/train.py', config, '--work-dir', work_dir / 'load_from2', '--cfg-options',
                          f'load_from={root}/missing.pth')
    assert code == 1 and 'missing.pth' in stderr and 'does not exist' in stderr, stderr
    # resume continues from the last checkpoint (safe loading of the runner's own files)
    code, _, stderr = cli('tools/train.py', config, '--work-dir', work_dir, '--resume',
                          '--cfg-options', 'train_cfg.max_epochs=3')
    assert code == 0, stderr
    assert (work_dir / 'epoch_3.pth').exists()


def test_bad_arguments_are_one_line_errors_before_any_work(cli, tmp_path, tiny_config):
    config, root = tiny_config
    cases = [
        (('tools/train.py', config, '--cfg-options', 'train_cfg.max_iterz=2'),
         "unexpected keyword argument 'max_iterz'"),
        (('tools/train.py', config, '--cfg-options', 'model.backbone.type=GhostNetV33'), 'check the type name'),
        (('tools/deployment/fold.py', config, root / 'x.pth', root / 'y.pth', '--shape', '-5', '64'),
         'positive height and width'),
        (('tools/deployment/fold.py', config, root / 'x.pth', tmp_path), 'is a directory'),
        (('tools/analysis_tools/benchmark.py', config, '--shape', '0', '0'), 'must be positive'),
        (('tools/structure/export_structure.py', tmp_path, '--macs', 'nan'), 'not a positive finite amount'),
    ]
    (root / 'x.pth').write_bytes(b'')
    bad = tmp_path / 'bad.py'
    bad.write_text('model = dict(\n')
    cases.append((('tools/train.py', bad), 'is not valid Python (line 1)'))
    for args, message in cases:
        code, _, stderr = cli(*args)
        assert code != 0 and message in stderr, (args, stderr[-1500:])
        assert 'Traceback' not in stderr, (args, stderr[-1500:])


def test_missing_config_and_checkpoint_are_named(cli, tmp_path, tiny_config):
    code, _, stderr = cli('tools/train.py', tmp_path / 'none.py')
    assert code == 1 and 'none.py' in stderr
    code, _, stderr = cli('tools/test.py', tiny_config[0], tmp_path / 'none.pth')
    assert code == 1 and 'none.pth' in stderr and 'does not exist' in stderr


def test_folded_loops_evaluate_and_deploy_hook_exports_the_folded_ema_model(tiny_config, cli):
    import torch

    from mmcompact.checkpoint import safe_load
    from mmcompact.deploy import deploy_config
    from mmcompact.reparam import max_abs_diff, reparameterize_model
    from mmcompact.utils import build_model, load_config
    config, root = tiny_config
    work_dir = root / 'deploy_hook'
    with_hooks = root / 'with_deploy_hook.py'
    with_hooks.write_text(f"_base_ = '{config}'\ncustom_hooks = [dict(type='EMAHook', momentum=0.5), "
                          "dict(type='mmcompact.DeployHook', check_shape=(1, 3, 48, 48))]\n"
                          "val_cfg = dict(type='mmcompact.FoldedValLoop', check_shape=(1, 3, 48, 48))\n"
                          "test_cfg = dict(type='mmcompact.FoldedTestLoop', check_shape=(1, 3, 48, 48))\n")
    code, _, stderr = cli('tools/train.py', with_hooks, '--work-dir', work_dir)
    assert code == 0, stderr
    logs = '\n'.join(p.read_text() for p in work_dir.glob('*/*.log'))
    assert 'val_cfg: folded model matches the training form' in logs
    assert 'DeployHook: folded model matches the training form' in logs
    assert 'wrote the folded EMA weights' in logs
    # the folded test loop reports the metric of the training form (the same function)
    code, folded_out, stderr = cli('tools/test.py', with_hooks, str(work_dir / 'epoch_2.pth'), '--work-dir',
                                   root / 'folded_test')
    assert code == 0, stderr
    code, plain_out, stderr = cli('tools/test.py', config, str(work_dir / 'epoch_2.pth'), '--work-dir',
                                  root / 'plain_test')
    assert code == 0, stderr
    assert 'test_cfg: folded model matches the training form' in folded_out + stderr + '\n'.join(
        p.read_text() for p in (root / 'folded_test').glob('*/*.log'))
    assert folded_out.splitlines()[-1].startswith('accuracy/top1')
    assert folded_out.splitlines()[-1] == plain_out.splitlines()[-1]
    cfg = load_config(str(config))
    model = build_model(cfg, str(work_dir / 'epoch_2.pth'))  # its state_dict holds the EMA weights
    model.eval()
    deployed = build_model(deploy_config(cfg)[0])
    deployed.load_state_dict(safe_load(str(work_dir / 'deploy.pth'))['state_dict'], strict=True)
    deployed.eval()
    x = torch.randn(2, 3, 48, 48)
    with torch.no_grad():
        assert max_abs_diff(reparameterize_model(model)(x), deployed(x)) <= 1e-6


@pytest.mark.parametrize('task,options,rows', [
    ('cls', ['--epochs', '1', '--teacher-epochs', '1', '--num-train', '18', '--num-val', '18', '--lr', '3e-3'],
     ['| plain |', '| re-param |', '| re-param + KD |', '| re-param + DKD |', '| full recipe', '| teacher |',
      'optim_wrapper.optimizer.lr=0.003']),
    ('cls', ['--epochs', '1', '--teacher-epochs', '1', '--num-train', '18', '--num-val', '18',
             '--student', 'resnet18-0.25x'],
     ['| plain |', '| re-param |', '| re-param + KD |', '| re-param + DKD |', '| full recipe', '| teacher |',
      'resnet18-0.25x_kd.py', 'model.backbone.deploy=True']),
    ('cls', ['--epochs', '1', '--teacher-epochs', '1', '--num-train', '18', '--num-val', '18',
             '--student', 'resnet18-0.25x', '--augment', 'randaug'],
     ['| re-param |', '| re-param + KD |', '| teacher |', 'resnet18-0.25x_randaug.py',
      'resnet18-0.25x_kd_randaug.py', 'RandAugment + RandomErasing']),
    ('det', ['--iters', '2', '--teacher-iters', '2', '--num-train', '8', '--num-val', '4',
             '--det-teacher', 'r18-0.25x'],
     ['| plain |', '| re-param |', '| re-param + KD |', '| full recipe', '| teacher |',
      'python tools/train.py configs/demo/teacher_retinanet_r18-0.25x_fpn_synthetic.py'])])
def test_recipe_study_runs_every_variant_at_toy_size(tmp_path, task, options, rows):
    from conftest import run_tool
    result = run_tool('projects/studies/recipe_study.py', '--task', task, '--work-dir', str(tmp_path), '--seeds', '0',
                      *options)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    table = (tmp_path / 'results.md').read_text()
    for row in rows:
        assert row in table, row
    macs = {line.split('|')[2].strip() for line in table.splitlines() if line.startswith('| ') and 'M) |' in line}
    assert len(macs) == 1  # the same deploy network for every variant
    assert (tmp_path / 'recipe_study.png').exists()


def test_recipe_study_names_the_missing_config_of_an_augmentation(tmp_path):
    """``--augment randaug`` for a student without *_randaug.py configs stops before any work, naming them."""
    from conftest import run_tool
    result = run_tool('projects/studies/recipe_study.py', '--work-dir', str(tmp_path), '--augment', 'randaug',
                      '--student', 'ghostnetv3-0.5x')
    assert result.returncode == 1 and 'ghostnetv3-0.5x_randaug.py' in result.stderr, result.stderr
    assert not (tmp_path / 'data').exists()


def test_recipe_study_report_only_pools_finished_runs_and_trains_nothing(tmp_path):
    """Two seeds trained, then ``--report-only`` over three: the table pairs the two finished seeds (paired
    column), the third is left out, and no run is started for it; ``--merge`` fills it from an earlier
    results.json when the teachers agree (a distilled variant is in the study, so it has a teacher)."""
    import json

    from conftest import run_tool
    argv = ['projects/studies/recipe_study.py', '--work-dir', str(tmp_path), '--epochs', '1', '--teacher-epochs', '1',
            '--num-train', '18', '--num-val', '18', '--variants', 'plain', 're-param', 're-param + KD']
    trained = run_tool(*argv, '--seeds', '0', '1', '--jobs', '2')
    assert trained.returncode == 0, trained.stdout[-3000:] + trained.stderr[-3000:]
    reported = run_tool(*argv, '--seeds', '0', '1', '2', '--report-only')
    assert reported.returncode == 0, reported.stdout[-3000:] + reported.stderr[-3000:]
    study = json.loads((tmp_path / 'results.json').read_text())
    assert {name: sorted(v['seeds']) for name, v in study['variants'].items()} == {
        'plain': ['0', '1'], 're-param': ['0', '1'], 're-param + KD': ['0', '1']}
    assert not (tmp_path / 're_param' / 'seed2').exists() and not (tmp_path / 'plain' / 'seed2').exists()
    row = next(line for line in (tmp_path / 'results.md').read_text().splitlines()
               if line.startswith('| re-param vs plain |'))
    assert row.count('|') == 6 and row.rstrip().split('|')[4].strip().endswith('(2)')
    # --merge: an earlier invocation's scores (here seed 2 of plain, as if trained in a checkout now gone) fill
    # the runs this work dir lacks; a teacher that scores differently makes the merge an error
    prior = {**study, 'variants': {'plain': {**study['variants']['plain'], 'seeds': {'2': 50.0}}}}
    (tmp_path / 'prior.json').write_text(json.dumps(prior))
    merged = run_tool(*argv, '--seeds', '0', '1', '2', '--report-only', '--merge', str(tmp_path / 'prior.json'))
    assert merged.returncode == 0, merged.stdout[-3000:] + merged.stderr[-3000:]
    pooled = json.loads((tmp_path / 'results.json').read_text())['variants']
    assert pooled['plain']['seeds'] == {**study['variants']['plain']['seeds'], '2': 50.0}
    assert pooled['re-param']['seeds'] == study['variants']['re-param']['seeds']
    assert '1 scores from' in (tmp_path / 'results.md').read_text()
    assert 'Environment of this invocation: torch ' in (tmp_path / 'results.md').read_text()
    (tmp_path / 'prior.json').write_text(json.dumps({**prior, 'teacher': study['teacher'] + 1}))
    mismatch = run_tool(*argv, '--seeds', '0', '1', '2', '--report-only', '--merge', str(tmp_path / 'prior.json'))
    assert mismatch.returncode == 1 and 'not comparable' in mismatch.stderr
    missing = run_tool(*argv[:2], str(tmp_path / 'no_study'), *argv[3:], '--report-only')
    assert missing.returncode == 1 and 'no_study does not exist' in missing.stderr
    assert not (tmp_path / 'no_study').exists()


def test_a_failed_command_leaves_nothing_and_force_replaces_whole(cli, tmp_path):
    """make_synthetic --force replaces the folder (no images of the earlier run left); a failing run leaves
    the folder as it was."""
    out = tmp_path / 'data'
    assert cli('tools/misc/make_synthetic.py', 'cls', out, '--num-train', 33, '--num-val', 6, '--classes', 6)[0] == 0
    assert cli('tools/misc/make_synthetic.py', 'cls', out, '--num-train', 6, '--num-val', 6, '--classes', 2,
               '--force')[0] == 0
    assert len([p for p in out.rglob('*.png')]) == 12
    code, _, stderr = cli('tools/misc/make_synthetic.py', 'cls', out, '--num-train', 6, '--num-val', 6, '--classes', 99,
                          '--force')
    assert code == 1 and 'num_classes' in stderr
    assert len([p for p in out.rglob('*.png')]) == 12 and sorted(p.name for p in tmp_path.iterdir()) == ['data']


def test_structure_study_runs_every_method_at_toy_size_and_reuses_finished_runs(tmp_path):
    """The whole study (data, teacher, two searches, every method, report, plots) end to end at toy size; run
    again, it reuses every finished step and trains nothing."""
    import json

    from conftest import run_tool
    argv = ['projects/studies/structure_study.py', '--work-dir', str(tmp_path), '--budgets', '10.54M', '--seeds', '0',
            '--epochs', '1', '--teacher-epochs', '1', '--search-epochs', '1', '--search-images', '12',
            '--num-train', '12', '--num-val', '12', '--jobs', '1']
    first = run_tool(*argv)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    measured = json.loads((tmp_path / 'measured.json').read_text())
    rows = {row['method']: row for row in measured['rows']}
    assert set(rows) == {'learned', 'uniform', 'uniform-init', 'random', 'no-init', 'no-KD'}
    assert 0.97 * 10.54e6 <= rows['uniform']['macs'] <= 10.54e6  # matched within 3%, never over the budget
    assert rows['uniform-init']['macs'] == rows['uniform']['macs']  # the same network (the 0.5x one)
    assert all(row['macs'] <= 10.54e6 for row in rows.values())
    report = (tmp_path / 'results.md').read_text()
    assert 'seed 1' in report  # the stability check against the second search seed
    for plot in ('study.png', 'pareto.png', 'structures.png'):
        assert (tmp_path / plot).exists(), plot
    runs_log = (tmp_path / 'runs.log').read_text()
    second = run_tool(*argv)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert (tmp_path / 'runs.log').read_text() == runs_log  # nothing trained again
    assert json.loads((tmp_path / 'measured.json').read_text())['runs'] == measured['runs']


def test_structure_study_names_a_missing_predictor_before_any_work(cli, tmp_path):
    code, _, err = cli('projects/studies/structure_study.py', '--work-dir', tmp_path / 'study', '--methods',
                       'predicted')
    assert code == 2 and '--methods predicted needs --predictor' in err
    code, _, err = cli('projects/studies/structure_study.py', '--work-dir', tmp_path / 'study', '--predictor',
                       tmp_path / 'no.json')
    assert code == 2 and 'no.json' in err and 'does not exist' in err
    assert not (tmp_path / 'study').exists()


def test_resume_refuses_what_it_cannot_continue(tiny_config, cli):
    """--resume says in one line, before any training, when the run is finished, when the checkpoint is past
    the schedule, when the model changed since the checkpoint (MMEngine would load non-strictly and fail in
    the optimizer), and when last_checkpoint names something that is not a checkpoint."""
    config, root = tiny_config
    work_dir = root / 'resume'
    code, _, stderr = cli('tools/train.py', config, '--work-dir', work_dir)
    assert code == 0, stderr
    code, stdout, stderr = cli('tools/train.py', config, '--work-dir', work_dir, '--resume')
    assert code == 0 and 'already at epoch 2 of 2' in stdout, stdout + stderr
    code, _, stderr = cli('tools/train.py', config, '--work-dir', work_dir, '--resume',
                          '--cfg-options', 'train_cfg.max_epochs=1')
    assert code == 1 and 'past train_cfg.max_epochs=1' in stderr and len(stderr.strip().splitlines()) == 1, stderr
    code, _, stderr = cli('tools/train.py', config, '--work-dir', work_dir, '--resume',
                          '--cfg-options', 'model.head.num_classes=3', 'train_cfg.max_epochs=3')
    assert code == 1 and 'head.fc.weight is (2, ' in stderr and 'and (3, ' in stderr, stderr
    assert 'new work dir' in stderr and 'load_from' in stderr, stderr
    (work_dir / 'last_checkpoint').write_text(str(work_dir))
    code, _, stderr = cli('tools/train.py', config, '--work-dir', work_dir, '--resume')
    assert code == 1 and 'last_checkpoint names a folder' in stderr and 'epoch_2.pth' in stderr, stderr
    (work_dir / 'last_checkpoint').write_text(str(work_dir / 'epoch_9.pth'))
    code, _, stderr = cli('tools/train.py', config, '--work-dir', work_dir, '--resume')
    assert code == 1 and 'names a missing file' in stderr, stderr
    assert (work_dir / 'epoch_2.pth').exists()  # nothing the user had is touched


def test_resume_refuses_an_optimizer_state_of_another_optimizer(tiny_config, cli):
    """Same model, another optimizer setup (the config's per-parameter groups dropped): one line before
    training, not torch's error from inside Optimizer.load_state_dict."""
    config, root = tiny_config
    work_dir = root / 'resume_optim'
    code, _, stderr = cli('tools/train.py', config, '--work-dir', work_dir, '--cfg-options', 'train_cfg.max_epochs=1')
    assert code == 0, stderr
    code, _, stderr = cli('tools/train.py', config, '--work-dir', work_dir, '--resume', '--cfg-options',
                          'train_cfg.max_epochs=2', 'optim_wrapper.paramwise_cfg=None')
    assert code == 1 and 'optimizer state has parameter groups' in stderr and 'new work dir' in stderr, stderr


def test_stock_checkpoint_hook_removes_the_sidecars_of_the_checkpoints_it_deletes(tiny_config, cli):
    """MMEngine's own CheckpointHook (max_keep_ckpts=1) deletes epoch_1.pth when it writes epoch_2.pth: with
    mmcompact imported its .sha256 sidecar goes with it, so no orphan sidecars pile up."""
    config, root = tiny_config
    work_dir = root / 'stock_hook'
    code, _, stderr = cli('tools/train.py', config, '--work-dir', work_dir, '--cfg-options',
                          'default_hooks.checkpoint.type=CheckpointHook', 'default_hooks.checkpoint.interval=1',
                          'default_hooks.checkpoint.max_keep_ckpts=1')
    assert code == 0, stderr
    names = sorted(p.name for p in work_dir.iterdir() if '.pth' in p.name)
    assert names == ['epoch_2.pth', 'epoch_2.pth.sha256'], names
