"""mmcompact's quick start (the main job): the whole story on real mmdet machinery, on CPU.

  1. easy synthetic COCO-format detection data (plain backgrounds, 1-3 large shapes, or with --objects
     fashion-mnist real Fashion-MNIST items: trousers, bags, sneakers)                 (tools/misc/make_synthetic.py)
  2. a RetinaNet-ResNet18-FPN teacher at a quarter width                              (tools/train.py)
  3. the plain GhostNetV3-0.5x RetinaNet student (no re-param, no KD)
  4. the recipe student: the same network re-parameterized and distilled (PKD + head KD, EMA)
  5. fold the recipe student, check it                                                 (tools/deployment/fold.py)
  6. COCO mAP of all four (the two students and the folded one share one deploy network), table, plots

    python tools/misc/demo.py [--work-dir work_dirs/demo] [--teacher-iters 1200] [--iters 250] [--large]
                              [--objects shapes|fashion-mnist|auto]

It prints one line per step (a progress bar while it trains) and writes each step's whole output to a log in that
step's folder. 5.7 minutes on an idle 2-core Intel Xeon here, 7.7 on an idle 2-core AMD EPYC, up to 15.7 with the
shared host busy (docs/usage.md); --large makes everything bigger for a GPU. The students' schedule is too short
on a CPU to show what the recipe is worth, so the demo ends with the measured Fashion-MNIST recipe study
(results/fashion_mnist_recipe.json), labelled as such.
"""
import argparse
import contextlib
import os
import re
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOOLS = os.path.dirname(HERE)
ROOT = os.path.dirname(TOOLS)
CONFIGS = os.path.join(ROOT, 'configs', 'demo')
TEACHER = os.path.join(CONFIGS, 'teacher_retinanet_r18-0.25x_fpn_synthetic.py')
STUDENT = os.path.join(CONFIGS, 'student_retinanet_ghostnetv3-0.5x_synthetic.py')
DISTILL = os.path.join(CONFIGS, 'student_retinanet_ghostnetv3-0.5x_kd_synthetic.py')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--work-dir', default='work_dirs/demo')
    parser.add_argument('--teacher-iters', type=int, default=1200, help='training iterations of the teacher')
    parser.add_argument('--iters', type=int, default=250, help='training iterations of each student')
    parser.add_argument('--num-train', type=int, default=400)
    parser.add_argument('--num-val', type=int, default=80)
    parser.add_argument('--large', action='store_true',
                        help='GPU-sized run: 10x the data, 10x the iterations')
    parser.add_argument('--objects', choices=['shapes', 'fashion-mnist', 'auto'], default='shapes',
                        help='what the scenes hold: drawn shapes, Fashion-MNIST items (train items in training '
                             'images, test items in validation images; from data/fashion_mnist or the Debian '
                             'package), or those where the files are there and shapes otherwise')
    return parser.parse_args(argv)


def scene_objects(choice: str) -> tuple:
    """(Fashion-MNIST folder or None for shapes, the scenes' class names or None for the configs' own, the
    data step's note) of ``--objects``; ``fashion-mnist`` without the files is an error, ``auto`` then says
    that it falls back to shapes."""
    from mmcompact.data.fashion_mnist import DEBIAN_DIR, INSTALL_HINT, holds_items
    from mmcompact.data.synthetic import fashion_scene_classes
    if choice == 'shapes':
        return None, None, 'shapes'
    prepared = os.path.join(ROOT, 'data', 'fashion_mnist')
    folder = next((f for f in (prepared, DEBIAN_DIR) if holds_items(f)), None)
    if folder is None:
        if choice == 'fashion-mnist':
            raise FileNotFoundError(f'--objects fashion-mnist: no Fashion-MNIST files in {prepared} or {DEBIAN_DIR}: '
                                    f'{INSTALL_HINT}; or pass --objects shapes')
        return None, None, f'shapes (no Fashion-MNIST files in {prepared} or {DEBIAN_DIR})'
    names = tuple(fashion_scene_classes(3))
    return folder, names, f'Fashion-MNIST items ({", ".join(names)}) from {folder}'


def print_study_results(format_table) -> None:
    """The established result (results/fashion_mnist_recipe.json: the recipe study on Fashion-MNIST, mean and
    95% CI over seeds), printed after this run and labelled as such: a CPU-sized demo is too short to show what
    the recipe is worth. Nothing when the file is not there."""
    import json
    path = os.path.join(ROOT, 'results', 'fashion_mnist_recipe.json')
    if not os.path.isfile(path):
        return
    with open(path) as f:
        study = json.load(f)
    rows = [['variant (same deploy network)', study['metric'] + ' mean', '95% CI', 'seeds']]
    for variant, v in study['variants'].items():
        rows.append([variant, f"{v['mean']:.2f}", f"+-{v['ci95']:.2f}", str(len(v['seeds']))])
    if study.get('teacher') is not None:
        rows.append(['teacher', f"{study['teacher']:.2f}", '', '1'])
    print(f"\nNot this run: the measured recipe study ({study['title']}; results/fashion_mnist_recipe.md):")
    print(format_table(rows, total_row=False))


def step(clock: list, name: str, total: int, message: str) -> None:
    """Note the next step's ``(name, start seconds)`` in ``clock`` and print its one line (numbered)."""
    clock.append((name, time.time()))
    print(f'[{len(clock)}/{total}] {message}', flush=True)


ITERATION = re.compile(r'Iter\(train\)\s*\[\s*(\d+)/(\d+)\]')


def run_logged(script: str, argv: list, log: str, iterations: int = 0) -> bool:
    """Run a tool in a new process with its whole output in ``log``; with ``iterations`` (a training), a
    progress bar with ETA follows the log's ``Iter(train) [n/N]`` lines. On failure the log's tail is printed.
    Returns whether it succeeded."""
    import subprocess

    from tqdm import tqdm
    os.makedirs(os.path.dirname(log), exist_ok=True)
    with open(log, 'w') as out, tqdm(total=iterations or None, unit='it', leave=False,
                                     disable=not iterations, dynamic_ncols=True) as bar:
        process = subprocess.Popen([sys.executable, script, *map(str, argv)], stdout=out, stderr=subprocess.STDOUT)
        while process.poll() is None:
            time.sleep(1)
            with open(log, errors='replace') as f:
                done = [int(m.group(1)) for m in ITERATION.finditer(f.read())]
            if done and done[-1] > bar.n:
                bar.update(done[-1] - bar.n)
    if process.returncode:
        with open(log, errors='replace') as f:
            tail = f.read().splitlines()[-25:]
        print(f'failed (exit {process.returncode}); the end of {log}:\n' + '\n'.join(tail), file=sys.stderr)
    return process.returncode == 0


@contextlib.contextmanager
def output_to(log: str):
    """Send everything this process prints (Python and C level, e.g. the MMEngine runners of the evaluation)
    to ``log`` while inside; yields a stream on the original terminal for a progress bar."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    terminal = os.fdopen(os.dup(saved[1]), 'w')
    with open(log, 'w') as f:
        os.dup2(f.fileno(), 1)
        os.dup2(f.fileno(), 2)
        try:
            yield terminal
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
            terminal.close()


def time_table(clock: list, train_logs: dict, format_table) -> str:
    """Where the run's time went: the wall minutes of each step in ``clock`` (up to the start of the last)
    and, for the training steps, the median logged seconds per iteration (``train_logs``: step name -> the
    run's scalar records). A step far slower than the README's idle figures means a slower or loaded machine."""
    import statistics
    rows = [['step', 'wall time', 's / iteration (median)']]
    for (name, begin), (_, end) in zip(clock, clock[1:]):
        times = [r['time'] for r in train_logs.get(name, []) if 'time' in r]
        rows.append([name, f'{(end - begin) / 60:.2f} min', f'{statistics.median(times):.3f}' if times else ''])
    rows.append(['all steps', f'{(clock[-1][1] - clock[0][1]) / 60:.2f} min', ''])
    return format_table(rows, total_row=False)


def cfg_options(options: dict) -> list:
    return ['--cfg-options'] + [f'{k}={v}' for k, v in options.items()]


def save_plots(out_dir: str, teacher_log: list, plain_log: list, student_log: list, table: list) -> list:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    paths = []
    fig, ax = plt.subplots(figsize=(7, 4))
    for log, key, label in ((teacher_log, 'loss', 'teacher: loss'),
                            (plain_log, 'loss_cls', 'plain student: loss_cls'),
                            (student_log, 'loss_cls', 'recipe student: loss_cls (task)'),
                            (student_log, 'loss_pkd_fpn', 'recipe student: loss_pkd_fpn'),
                            (student_log, 'loss_kd_cls', 'recipe student: loss_kd_cls')):
        points = [(r['step'], r[key]) for r in log if key in r and 'step' in r]
        if points:
            ax.plot(*zip(*points), label=label)
    ax.set_xlabel('iteration')
    ax.set_ylabel('loss')
    ax.set_title('Training losses (teacher, plain student, distilled recipe student)')
    ax.legend(fontsize=8)
    fig.tight_layout()
    paths.append(os.path.join(out_dir, 'loss_curves.png'))
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)

    names = [row['name'] for row in table]
    fig, ax = plt.subplots(figsize=(7, 4))
    xs = range(len(names))
    ax.bar([x - 0.2 for x in xs], [row['mAP'] for row in table], width=0.4, label='bbox mAP')
    ax.bar([x + 0.2 for x in xs], [row['mAP50'] for row in table], width=0.4, label='bbox mAP@0.5')
    ax.set_xticks(list(xs), names, fontsize=8)
    ax.set_title('COCO evaluation on the synthetic val split (students: one deploy network)')
    ax.legend()
    fig.tight_layout()
    paths.append(os.path.join(out_dir, 'map.png'))
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 4))
    points = {}  # rows at the same point (a student and its folded form) share one marker and one label
    for row in table:
        points.setdefault((row['macs'] / 1e6, row['mAP']), []).append(row['name'])
    for (macs, mean_ap), point_names in points.items():
        ax.scatter(macs, mean_ap, s=60)
        ax.annotate(' = '.join(point_names), (macs, mean_ap), textcoords='offset points', xytext=(5, 5),
                    fontsize=8)
    ax.margins(x=0.2, y=0.1)
    ax.set_xlabel('deploy MACs (M, at the demo input size)')
    ax.set_ylabel('bbox mAP')
    ax.set_title('bbox mAP vs deploy MACs')
    fig.tight_layout()
    paths.append(os.path.join(out_dir, 'map_vs_flops.png'))
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)
    return paths


def train_and_fold(args, clock: list, total: int, work_dir: str) -> dict:
    """Steps 1-5 (data, teacher, plain and recipe students, fold), each a tool process logged to its folder.
    Returns the folders and checkpoints, or None when a step failed (its log's tail printed)."""
    from mmcompact.cli import PLAIN_GHOSTNET_OPTIONS, coco_data_options, schedule_overrides
    teacher_iters, iters, num_train, num_val = args.teacher_iters, args.iters, args.num_train, args.num_val
    if args.large:
        teacher_iters, iters, num_train, num_val = (v * 10 for v in (teacher_iters, iters, num_train, num_val))
    try:
        fashion_mnist, classes, objects = scene_objects(args.objects)
    except FileNotFoundError as err:
        print(f'error: {err}', file=sys.stderr)
        return None
    data_dir = os.path.join(work_dir, 'data' if fashion_mnist is None else 'data_fashion_mnist')
    data = coco_data_options(data_dir, classes)
    run = dict(data=data, iters=iters, teacher_dir=os.path.join(work_dir, 'teacher'),
               plain_dir=os.path.join(work_dir, 'plain_student'), student_dir=os.path.join(work_dir, 'student'))
    run['teacher_ckpt'] = os.path.join(run['teacher_dir'], f'iter_{teacher_iters}.pth')
    run['folded'] = os.path.join(run['student_dir'], 'student_folded.pth')

    reused = os.path.isfile(os.path.join(data_dir, 'annotations', 'instances_val.json'))
    step(clock, 'data', total, f'easy synthetic COCO-format data, objects: {objects}; {num_train} train + {num_val} '
         f'val images -> {data_dir}' + (' (already there: reused; delete the folder to regenerate)' if reused else ''))
    if not reused and not run_logged(f'{HERE}/make_synthetic.py', [
            'det', data_dir, '--num-train', num_train, '--num-val', num_val, '--classes', 3, '--min-size', 128,
            '--max-size', 160, '--max-objects', 3, '--no-clutter']
            + (['--fashion-mnist', fashion_mnist] if fashion_mnist else []),
            os.path.join(work_dir, 'logs', 'data.log')):
        return None
    trainings = [
        ('teacher', f"train the teacher (RetinaNet-ResNet18-FPN at a quarter width, {teacher_iters} iterations) -> "
         f"{run['teacher_dir']}", TEACHER, run['teacher_dir'], {**data, **schedule_overrides(teacher_iters)},
         teacher_iters),
        ('plain student', f"train the plain GhostNetV3-0.5x student ({iters} iterations, no re-param, no KD) -> "
         f"{run['plain_dir']}", STUDENT, run['plain_dir'],
         {**data, **schedule_overrides(iters), **PLAIN_GHOSTNET_OPTIONS}, iters),
        ('recipe student', f'distill the recipe student (re-param GhostNetV3-0.5x + PKD + head KD + EMA, {iters} '
         f"iterations) -> {run['student_dir']}", DISTILL, run['student_dir'],
         {**data, **schedule_overrides(iters), 'model.teacher_checkpoint': run['teacher_ckpt']}, iters)]
    for name, message, config, folder, options, steps in trainings:
        step(clock, name, total, message)
        if not run_logged(f'{TOOLS}/train.py', [config, '--work-dir', folder] + cfg_options(options),
                          os.path.join(folder, 'train.log'), steps):
            return None
    step(clock, 'fold', total, 'fold the exported recipe student and check it (tools/deployment/fold.py)')
    if not run_logged(f'{TOOLS}/deployment/fold.py', [STUDENT, os.path.join(run['student_dir'], 'student.pth'),
                                                      run['folded'], '--shape', 160, 160, '--force']
                      + cfg_options(data), os.path.join(run['student_dir'], 'fold.log')):
        return None
    return run


def evaluate_all(run: dict, work_dir: str) -> tuple:
    """Step 6: COCO mAP, deploy params / MACs and CPU latency of the teacher, both students and the folded
    recipe student (their output in eval/evaluation.log, a progress bar on the console). Returns (rows,
    latency)."""
    from tqdm import tqdm

    from mmcompact.analysis import measure_latency
    from mmcompact.checkpoint import safe_load
    from mmcompact.cli import PLAIN_GHOSTNET_OPTIONS, evaluate
    from mmcompact.deploy import deploy_config
    from mmcompact.structure import count_deployed
    from mmcompact.utils import build_model, load_config
    data = run['data']
    student_cfg = load_config(STUDENT, data)
    entries = [('teacher', load_config(TEACHER, data), run['teacher_ckpt']),
               ('plain student', load_config(STUDENT, {**data, **PLAIN_GHOSTNET_OPTIONS}),
                os.path.join(run['plain_dir'], f"iter_{run['iters']}.pth")),
               ('recipe student', student_cfg, os.path.join(run['student_dir'], 'student.pth')),
               ('recipe student deploy', deploy_config(student_cfg)[0], run['folded'])]
    table = []
    os.makedirs(os.path.join(work_dir, 'eval'), exist_ok=True)
    with output_to(os.path.join(work_dir, 'eval', 'evaluation.log')) as terminal, \
            tqdm(total=len(entries) + 1, unit='model', leave=False, file=terminal) as bar:
        for name, cfg, ckpt in entries:
            metrics = evaluate(cfg, ckpt, os.path.join(work_dir, 'eval', name.replace(' ', '_')))
            model = build_model(cfg)
            model.load_state_dict(safe_load(ckpt)['state_dict'], strict=True)
            complexity = count_deployed(model, (3, 160, 160))
            table.append(dict(name=name, model=model.eval(), params=complexity['params'], macs=complexity['macs'],
                              mAP=metrics.get('coco/bbox_mAP', 0.0), mAP50=metrics.get('coco/bbox_mAP_50', 0.0),
                              detected='coco/bbox_mAP' in metrics))
            bar.update(1)
        latency = measure_latency({row['name']: row['model'] for row in table}, 1, (160, 160), warmup=2, iters=10)
        bar.update(1)
    for row in table:
        if not row['detected']:  # CocoMetric reports nothing when there is no detection at all
            print(f"{row['name']}: no detection above the score threshold: mAP 0")
    return table, latency


def main(argv=None) -> int:
    args = parse_args(argv)
    start = time.time()
    import warnings
    warnings.filterwarnings('ignore', message='pkg_resources is deprecated')  # mmengine's import, every run
    import torch

    import mmcompact  # noqa: F401
    from mmcompact.analysis import format_table, read_scalars
    work_dir = os.path.abspath(args.work_dir)
    total, clock = 7, []
    run = train_and_fold(args, clock, total, work_dir)
    if run is None:
        return 1
    step(clock, 'evaluation, counting, latency', total,
         f'COCO evaluation of the teacher, both students and the folded recipe student -> {work_dir}/eval')
    table, latency = evaluate_all(run, work_dir)

    step(clock, 'summary', total, f"summary (this run; every step's log is in its folder under {work_dir})")
    rows = [['model', 'deploy params', 'deploy MACs @160', 'latency bs1 (CPU)', 'bbox mAP', 'mAP@0.5']]
    for row in table:
        rows.append([row['name'], f"{row['params'] / 1e6:.2f}M", f"{row['macs'] / 1e6:.1f}M",
                     f"{latency[row['name']]['ms']:.1f} ms", f"{row['mAP']:.3f}", f"{row['mAP50']:.3f}"])
    print(format_table(rows, total_row=False))
    plain_row, student_row, deploy_row = table[1:]
    print(f"\nthe students share one deploy network ({deploy_row['macs'] / 1e6:.1f}M MACs); after {run['iters']} "
          f"iterations the recipe student has {student_row['mAP']:.3f} mAP, the plain one {plain_row['mAP']:.3f} "
          f"(one seed each: see the study below for what is established). Folding kept the recipe student's "
          f"mAP ({student_row['mAP']:.3f} -> {deploy_row['mAP']:.3f}).")
    train_logs = {'teacher': read_scalars(run['teacher_dir']), 'plain student': read_scalars(run['plain_dir']),
                  'recipe student': read_scalars(run['student_dir'])}
    plots = save_plots(work_dir, train_logs['teacher'], train_logs['plain student'], train_logs['recipe student'],
                       table)
    print('plots: ' + ', '.join(plots))
    print('\nwhere the time went (this run):')
    print(time_table(clock, train_logs, format_table))
    print_study_results(format_table)
    print(f'done in {(time.time() - start) / 60:.1f} min (torch threads: {torch.get_num_threads()})')
    return 0


if __name__ == '__main__':
    sys.exit(main())
