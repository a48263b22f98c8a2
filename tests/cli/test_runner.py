"""mmcompact.cli.train_or_reuse: the one "run or reuse a finished run" rule of every study."""
import json
import os

import pytest

from mmcompact.cli import FINISHED_MARKER, finished_metric, train_or_reuse

# A stand-in for tools/train.py: logs a metric the way MMEngine does (vis_data/scalars.json of a timestamped
# run folder), fails when told to, and records the arguments it was called with.
FAKE_TRAIN = '''
import json, os, sys
args = sys.argv[1:]
work_dir = args[args.index('--work-dir') + 1]
with open(os.path.join(work_dir, 'calls.txt'), 'a') as f:
    f.write(' '.join(args) + '\\n')
if 'fail=1' in args:
    sys.exit(3)
run = os.path.join(work_dir, '20260101_000000', 'vis_data')
os.makedirs(run, exist_ok=True)
with open(os.path.join(run, 'scalars.json'), 'a') as f:
    f.write(json.dumps({'accuracy/top1': 91.5, 'step': 1}) + '\\n')
'''


@pytest.fixture
def fake_train(tmp_path):
    script = tmp_path / 'fake_train.py'
    script.write_text(FAKE_TRAIN)
    return str(script)


def test_a_logged_metric_without_the_marker_is_not_a_finished_run(tmp_path, fake_train):
    """A run killed after an intermediate validation has logged a metric: it must be resumed, not reused."""
    run_dir = tmp_path / 'run'
    run = run_dir / '20251231_000000' / 'vis_data'
    os.makedirs(run)
    (run / 'scalars.json').write_text(json.dumps({'accuracy/top1': 80.0, 'step': 1}) + '\n')
    (run_dir / 'last_checkpoint').write_text(str(run_dir / 'epoch_3.pth'))
    assert finished_metric(str(run_dir), 'accuracy/top1') is None
    assert train_or_reuse(fake_train, 'c.py', str(run_dir), 'accuracy/top1', report_only=True) is None
    score = train_or_reuse(fake_train, 'c.py', str(run_dir), 'accuracy/top1', {'a.b': 1})
    assert score == 91.5 and json.loads((run_dir / FINISHED_MARKER).read_text()) == {'accuracy/top1': 91.5}
    assert (run_dir / 'calls.txt').read_text().split() == ['c.py', '--work-dir', str(run_dir), '--cfg-options',
                                                           'a.b=1', '--resume']
    # finished: reused without a new process
    assert train_or_reuse(fake_train, 'c.py', str(run_dir), 'accuracy/top1') == 91.5
    assert len((run_dir / 'calls.txt').read_text().splitlines()) == 1


def test_a_failed_training_names_its_log_and_leaves_no_marker(tmp_path, fake_train):
    run_dir = tmp_path / 'run'
    with pytest.raises(RuntimeError, match=r'failed \(exit 3\).*train\.log'):
        train_or_reuse(fake_train, 'c.py', str(run_dir), 'accuracy/top1', {'fail': 1})
    assert not (run_dir / FINISHED_MARKER).exists()
