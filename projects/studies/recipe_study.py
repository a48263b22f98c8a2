"""Does the GhostNetV3 recipe help at small scale? The same deploy network trained several ways, several
seeds, on synthetic classification (class families) or COCO-format detection data.

    python projects/studies/recipe_study.py [--task cls] [--work-dir work_dirs/recipe_study] [--seeds 0 1 2 3 4]
                                 [--epochs 5] [--lr 2e-3] [--teacher-epochs 20] [--num-train 6000]
                                 [--num-val 1800] [--jobs 2]
    python projects/studies/recipe_study.py --task det [--iters 600] [--teacher-iters 2000] [--num-train 400]
                                 [--num-val 80] [--det-teacher r18|r18-0.25x] ...
    python projects/studies/recipe_study.py --task det-transfer --structure-dir work_dirs/structure_study --budget
    10.54M
                                 [--variants learned uniform] [--iters 600] ...

Classification (projects/studies/configs/kd_families/): 18 classes in 6 families of 3 (a shape with no mark, a dot,
a bar), 48x48 images without clutter; GhostNetV3-0.5x students, a ResNet-18 teacher trained once for
longer; variants plain, re-param, re-param + KD, re-param + DKD, full recipe (re-param + KD + EMA).
``--student resnet18-0.25x``: a quarter-width ResNet-18 re-parameterized by ``mmcompact.Reparameterized``, a
student that learns this data faster than GhostNetV3-0.5x (re-param: 85.5% top-1 after 16 epochs, against
34.4% after 12 for GhostNetV3-0.5x; projects/studies/results/recipe_study.md).
Detection: the easy synthetic COCO set (3 shape classes, 128-160 px images with 1-3 objects of 20-50% of
the side on plain gradient backgrounds); RetinaNet with a GhostNetV3-0.5x backbone, a RetinaNet-R18-FPN
teacher trained once for longer; variants plain, re-param, re-param + KD (PKD on the FPN + head logit KD),
full recipe (+ EMA).
Detection transfer (issue 15): the structure study's trained classifiers at one budget (one per method and
seed: learned, uniform, ...) each become the backbone of the same RetinaNet-FPN
(projects/studies/configs/structure_det/),
initialised from that classifier (the seed's own), fine-tuned on the detection data with the detection KD
recipe (PKD + head KD from the same teacher as --task det); COCO mAP per method, seed by seed.

Every run is a `tools/train.py` process (``--jobs`` at a time, one thread each); a finished run is reused
and an interrupted one resumes from its last checkpoint, so re-running the same command continues the
study. results.md (per-seed table, mean with 95% confidence interval, Welch and paired tests, the commands),
results.json (the same numbers, read by tools/misc/demo.py) and recipe_study.png are rewritten after every
finished run. ``--report-only`` trains nothing and reports the finished runs among ``--variants`` and
``--seeds``: e.g. after more seeds of two variants were trained by a second invocation, the pooled table.
``--merge results/<study>.json`` pools the scores of an invocation whose work dir is gone (a new checkout)
with this work dir's runs; the teacher, retrained with the same command, must score the same, which is what
makes the two comparable.
"""
import argparse
import json
import os
import re
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
TRAIN = os.path.join(ROOT, 'tools', 'train.py')
CLS = os.path.join(HERE, 'configs', 'kd_families')
DEMO = os.path.join(ROOT, 'configs', 'demo')
DET = os.path.join(HERE, 'configs', 'kd_det')
TRANSFER = os.path.join(HERE, 'configs', 'structure_det')
CLS_DATA = dict(classes=18, family_size=3, size=48, clutter=False)
DET_DATA = dict(num_classes=3, size_range=(128, 160), max_objects=3, clutter=False)
# cls students: projects/studies/configs/kd_families/<name>{,_kd,_dkd,_recipe}.py (and <name>{,_kd}_randaug.py)
CLS_STUDENTS = ('ghostnetv3-0.5x', 'resnet18-0.25x')
FMNIST = os.path.join(ROOT, 'configs', 'fashion_mnist')
# fmnist students: configs/fashion_mnist/<config>.py and the --cfg-options that build its plain network
FMNIST_STUDENTS = {
    'resnet18-0.25x': ('resnet18-0.25x-reparam_1xb128_fashion-mnist', {'model.backbone.deploy': True}),
    'mobilenet-v2-0.5x': ('mobilenet-v2-0.5x-reparam_1xb128_fashion-mnist', {'model.backbone.deploy': True}),
    'ghostnetv3-0.5x': ('ghostnetv3-0.5x_1xb128_fashion-mnist',
                        {'model.backbone.num_branches': 1, 'model.backbone.extra_branches': False}),
}
# det teachers: RetinaNet-R18-FPN at full width (the detection studies') and at a quarter width (the demo's)
DET_TEACHERS = {'r18': 'teacher_retinanet_r18_fpn_synthetic.py',
                'r18-0.25x': 'teacher_retinanet_r18-0.25x_fpn_synthetic.py'}
# (a, b): the comparisons the study exists for; Welch's test of a against b.
COMPARISONS = [('re-param', 'plain'), ('re-param + KD', 're-param'), ('re-param + DKD', 're-param'),
               ('full recipe (re-param + KD + EMA)', 're-param'), ('learned', 'uniform'), ('predicted', 'uniform'),
               ('uniform-init', 'uniform')]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--task', choices=['cls', 'det', 'det-transfer', 'fmnist'], default='cls',
                        help='fmnist: Fashion-MNIST (configs/fashion_mnist/, data from '
                             'tools/misc/prepare_fashion_mnist.py)')
    parser.add_argument('--data-root', default='data/fashion_mnist', help='fmnist: the prepared data folder')
    parser.add_argument('--work-dir', help='default: work_dirs/recipe_study (cls), work_dirs/recipe_study_det')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2, 3, 4])
    parser.add_argument('--epochs', type=int, default=5, help='cls: student epochs')
    parser.add_argument('--teacher-epochs', type=int, default=20, help='cls: teacher epochs')
    parser.add_argument('--lr', type=float, default=2e-3, help="cls: the students' AdamW learning rate")
    parser.add_argument('--student', choices=sorted(set(CLS_STUDENTS) | set(FMNIST_STUDENTS)),
                        default='ghostnetv3-0.5x',
                        help='cls: the student network (projects/studies/configs/kd_families/<student>*.py)')
    parser.add_argument('--augment', choices=['flips', 'randaug'], default='flips',
                        help="cls: the students' training augmentation: random flips, or flips + the GhostNetV3 "
                             "recipe's RandAugment + RandomErasing (projects/studies/configs/kd_families/*_randaug.py; "
                             're-param and re-param + KD only)')
    parser.add_argument('--iters', type=int, default=600, help='det: student training iterations')
    parser.add_argument('--teacher-iters', type=int, default=2000, help='det: teacher training iterations')
    parser.add_argument('--det-teacher', choices=sorted(DET_TEACHERS), default='r18',
                        help="det: the teacher, RetinaNet-R18-FPN at full width (the study's) or at a quarter width "
                             "(the quick start's, e.g. with --teacher-iters 1200 as there)")
    parser.add_argument('--num-train', type=int, help='default: 6000 (cls), 400 (det)')
    parser.add_argument('--num-val', type=int, help='default: 1800 (cls), 80 (det)')
    parser.add_argument('--variants', nargs='+', help='run only these variants (default: all of the task; '
                        'det-transfer: learned uniform)')
    parser.add_argument('--structure-dir', default='work_dirs/structure_study',
                        help='det-transfer: the work dir of projects/studies/structure_study.py')
    parser.add_argument('--budget', default='10.54M', help="det-transfer: the structure study's budget folder")
    parser.add_argument('--jobs', type=int, default=1, help='training processes at a time (one thread each '
                                                             'when more than one)')
    parser.add_argument('--report-only', action='store_true',
                        help='train nothing: report the finished runs of --work-dir among --variants and --seeds '
                             '(pools seeds trained by separate invocations; unfinished ones are left out)')
    parser.add_argument('--merge', metavar='JSON',
                        help="the results.json of an earlier invocation of this study whose work dir is gone (e.g. "
                             "projects/studies/results/recipe_study_r18s.json): its per-seed scores stand in for "
                             "the runs of --variants and --seeds that --work-dir has not finished (those are not "
                             "trained); its teacher's score must equal this work dir's")
    parser.add_argument('--threads', type=int, default=None,
                        help='threads per training process (default: 1 with --jobs > 1, else every core); 1 when '
                             'another study shares the machine')
    args = parser.parse_args(argv)
    det = args.task not in ('cls', 'fmnist')
    if args.task == 'fmnist' and args.student not in FMNIST_STUDENTS:
        parser.error(f'--task fmnist --student must be one of {sorted(FMNIST_STUDENTS)}')
    if args.task == 'cls' and args.student not in CLS_STUDENTS:
        parser.error(f'--task cls --student must be one of {list(CLS_STUDENTS)}')
    args.num_train = args.num_train or (400 if det else 6000)
    args.num_val = args.num_val or (80 if det else 1800)
    threads = 1 if args.threads is None else args.threads
    if min(args.seeds + [0]) < 0 or min(args.jobs, threads, args.epochs, args.teacher_epochs, args.iters) < 1:
        parser.error('--seeds must be >= 0, --jobs, --threads, --epochs, --teacher-epochs and --iters >= 1')
    if not args.lr > 0:
        parser.error(f'--lr must be > 0, got {args.lr}')
    return args


def cls_plan(args, data: str, work_dir: str):
    """(teacher (config, options, checkpoint), {variant: (config, options)}, metric key, note,
    {variant: the config of its deploy network, built with the variant's ``model.backbone`` options}).
    An option value may hold ``{seed}``, replaced per run."""
    from mmcompact.cli import PLAIN_GHOSTNET_OPTIONS
    from mmcompact.cli import epoch_overrides as epochs

    # 'plain': the same deploy network without re-param branches (Reparameterized: deploy=True builds it)
    plain = {'ghostnetv3-0.5x': PLAIN_GHOSTNET_OPTIONS, 'resnet18-0.25x': {'model.backbone.deploy': True}}[args.student]
    common = {f'{split}_dataloader.dataset.data_root': data for split in ('train', 'val', 'test')}
    teacher_ckpt = os.path.join(work_dir, 'teacher', f'epoch_{args.teacher_epochs}.pth')
    kd = {'model.teacher_checkpoint': teacher_ckpt}
    student = {**common, **epochs(args.epochs), 'optim_wrapper.optimizer.lr': args.lr}
    net = f'{CLS}/{args.student}'
    variants = {
        'plain': (f'{net}.py', {**student, **plain}),
        're-param': (f'{net}.py', student),
        're-param + KD': (f'{net}_kd.py', {**student, **kd}),
        're-param + DKD': (f'{net}_dkd.py', {**student, **kd}),
        'full recipe (re-param + KD + EMA)': (f'{net}_recipe.py', {**student, **kd}),
    }
    if args.augment == 'randaug':  # the teacher keeps its flips: the same teacher for both augmentations
        variants = {'re-param': (f'{net}_randaug.py', student),
                    're-param + KD': (f'{net}_kd_randaug.py', {**student, **kd})}
        missing = [config for config, _ in variants.values() if not os.path.isfile(config)]
        if missing:
            raise FileNotFoundError(f'--augment randaug needs {missing} for --student {args.student}')
    teacher = (f'{CLS}/resnet18.py', {**common, **epochs(args.teacher_epochs)}, teacher_ckpt)
    note = (f'{args.student} students {args.epochs} epochs at lr {args.lr:g}'
            + (', RandAugment + RandomErasing' if args.augment == 'randaug' else '')
            + f', teacher (ResNet-18) {args.teacher_epochs} epochs')
    return teacher, variants, 'accuracy/top1', note, {name: f'{net}.py' for name in variants}


def fmnist_plan(args, data: str, work_dir: str):
    """As ``cls_plan``, on Fashion-MNIST (``data``: ``--data-root``): the student families of
    ``FMNIST_STUDENTS``, the ResNet-18 teacher of configs/fashion_mnist/, validation every epoch (the curve)."""
    from mmcompact.cli import warmup_cosine_epoch_overrides
    from mmcompact.data.fashion_mnist import check_prepared
    check_prepared(data, '--data-root')
    common = {} if os.path.abspath(data) == os.path.join(ROOT, 'data', 'fashion_mnist') else \
        {f'{split}_dataloader.dataset.data_root': data for split in ('train', 'val', 'test')}

    def epochs(n):  # validation every epoch (the curve)
        return warmup_cosine_epoch_overrides(n, val_interval=1)
    teacher_ckpt = os.path.join(work_dir, 'teacher', f'epoch_{args.teacher_epochs}.pth')
    config, plain = FMNIST_STUDENTS[args.student]
    student_config = f'{FMNIST}/{config}.py'
    student = {**common, **epochs(args.epochs), 'optim_wrapper.optimizer.lr': args.lr}
    kd = {**student, 'model.student': student_config, 'model.teacher_checkpoint': teacher_ckpt}
    distill = f'{FMNIST}/resnet18-0.25x-reparam_resnet18_1xb128_fashion-mnist'
    variants = {
        'plain': (student_config, {**student, **plain}),
        're-param': (student_config, student),
        're-param + KD': (f'{distill}_kd.py', kd),
        're-param + DKD': (f'{distill}_dkd.py', kd),
        'full recipe (re-param + KD + EMA)': (f'{distill}_recipe.py', kd),
    }
    teacher = (f'{FMNIST}/resnet18_1xb128_fashion-mnist.py',
               {**common, **epochs(args.teacher_epochs)} if args.teacher_epochs != 20 else common, teacher_ckpt)
    note = (f'{args.student} students {args.epochs} epochs at lr {args.lr:g}, teacher (ResNet-18) '
            f'{args.teacher_epochs} epochs')
    return teacher, variants, 'accuracy/top1', note, {name: student_config for name in variants}


def det_teacher(args, work_dir: str, common: dict):
    """The detection teacher (config, options, checkpoint) and the students' schedule options: the
    RetinaNet-R18-FPN of ``--det-teacher`` (full width by default; the quick start's is a quarter-width one). KD
    runs name it with ``model.teacher``."""
    from mmcompact.cli import schedule_overrides
    checkpoint = os.path.join(work_dir, 'teacher', f'iter_{args.teacher_iters}.pth')
    teacher = (f'{DEMO}/{DET_TEACHERS[args.det_teacher]}', {**common, **schedule_overrides(args.teacher_iters)},
               checkpoint)
    return teacher, {**common, **schedule_overrides(args.iters)}


def det_plan(args, data: str, work_dir: str):
    """As ``cls_plan``, for detection."""
    from mmcompact.cli import PLAIN_GHOSTNET_OPTIONS, coco_data_options
    teacher, student = det_teacher(args, work_dir, coco_data_options(data))
    kd = {**student, 'model.teacher': teacher[0], 'model.teacher_checkpoint': teacher[2]}
    variants = {
        'plain': (f'{DEMO}/student_retinanet_ghostnetv3-0.5x_synthetic.py',
                  {**student, **PLAIN_GHOSTNET_OPTIONS}),
        're-param': (f'{DEMO}/student_retinanet_ghostnetv3-0.5x_synthetic.py', student),
        're-param + KD': (f'{DET}/retinanet_ghostnetv3-0.5x_kd.py', kd),
        'full recipe (re-param + KD + EMA)': (f'{DEMO}/student_retinanet_ghostnetv3-0.5x_kd_synthetic.py', kd),
    }
    width = '' if args.det_teacher == 'r18' else ' at a quarter width'
    note = f'students {args.iters} iterations, teacher (RetinaNet-R18-FPN{width}) {args.teacher_iters}'
    return teacher, variants, 'coco/bbox_mAP', note, {
        name: f'{DEMO}/student_retinanet_ghostnetv3-0.5x_synthetic.py' for name in variants}


def transfer_plan(args, data: str, work_dir: str):
    """As ``cls_plan``, for the detection transfer of the structure study's classifiers: per method and seed,
    writes ``students/<method>/seed<s>.py`` (the RetinaNet whose backbone is that classifier's, initialised
    from its checkpoint; the initialisation is verified) and distils it with the detection KD recipe."""
    from mmengine.config import Config

    from mmcompact.cli import coco_data_options
    from mmcompact.structure import check_backbone_initialised, transfer_backbone
    from mmcompact.utils import build_model
    teacher, student = det_teacher(args, work_dir, coco_data_options(data))
    budget_dir = os.path.join(os.path.abspath(args.structure_dir), args.budget)
    checkpoints = {}  # (method, seed) -> the classifier's checkpoint; every input checked before writing
    for method in args.variants or ['learned', 'uniform']:
        method_dir = os.path.join(budget_dir, method)
        if not os.path.isfile(os.path.join(method_dir, 'student.py')):
            found = {budget: sorted(os.listdir(os.path.join(args.structure_dir, budget)))
                     for budget in sorted(os.listdir(args.structure_dir)) if budget.endswith('M')} \
                if os.path.isdir(args.structure_dir) else {}
            raise FileNotFoundError(f'{method_dir}/student.py does not exist: --structure-dir and --budget must '
                                    'name a finished projects/studies/structure_study.py budget folder and --variants '
                                    'its '
                                    f'methods (found: {found or "no budget folders"})')
        for seed in args.seeds:
            pointer = os.path.join(method_dir, f'seed{seed}', 'last_checkpoint')
            if not os.path.isfile(pointer):
                raise FileNotFoundError(f'{pointer} does not exist: the structure study has no trained {method} '
                                        f'classifier for seed {seed} (pass --seeds of finished runs)')
            with open(pointer) as f:
                checkpoints[method, seed] = f.read().strip()
    variants, students = {}, {}
    for (method, seed), checkpoint in checkpoints.items():
        path = os.path.join(work_dir, 'students', method, f'seed{seed}.py')
        if not os.path.isfile(path):
            cfg = Config.fromfile(f'{TRANSFER}/retinanet_resnet18c_structured.py')
            cfg.model.backbone, cfg.model.neck.in_channels = transfer_backbone(
                os.path.join(budget_dir, method, 'student.py'), checkpoint, out_indices=(0, 1, 2, 3))
            model = build_model(cfg)
            model.init_weights()
            check_backbone_initialised(model.backbone, checkpoint)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            cfg.dump(path + '.tmp.py')
            os.replace(path + '.tmp.py', path)
        students[method] = os.path.join(work_dir, 'students', method, f'seed{args.seeds[0]}.py')
        variants[method] = (f'{TRANSFER}/retinanet_resnet18c_structured_kd.py', {
            **student, 'model.teacher': teacher[0], 'model.teacher_checkpoint': teacher[2],
            'model.student': os.path.join(work_dir, 'students', method, 'seed{seed}.py')})
    note = (f"backbones: the structure study's {args.budget} classifiers ({args.structure_dir}), students "
            f'{args.iters} iterations with PKD + head KD, teacher (RetinaNet-R18-FPN) {args.teacher_iters}')
    return teacher, variants, 'coco/bbox_mAP', note, students


def digits(metric_name: str) -> int:
    """Decimals shown: mAP in [0, 1] needs three, top-1 in percent two."""
    return 3 if 'mAP' in metric_name else 2


def merged_scores(path: str, metric_name: str) -> tuple:
    """(teacher score, {variant: {seed: score}}) from a results.json written by ``report``."""
    with open(path) as f:
        study = json.load(f)
    if study.get('metric') != metric_name:
        raise ValueError(f'--merge {path} holds {study.get("metric")!r} scores, this study {metric_name!r}: '
                         'pass the results.json of the same task')
    return study['teacher'], {name: {int(seed): score for seed, score in v['seeds'].items()}
                              for name, v in study['variants'].items()}


def command(config: str, run_dir: str, options: dict) -> list:
    """tools/train.py's arguments for one run."""
    return [config, '--work-dir', run_dir] + (['--cfg-options'] + [f'{k}={v}' for k, v in options.items()]
                                              if options else [])


def report(path: str, results: dict, teacher_score, metric_name: str, header: str, commands: list,
           macs: dict) -> str:
    """Write results.md: per-seed scores, mean with 95% CI, the study's comparisons (Welch's test, and the
    difference paired by seed: a seed fixes the initialisation and the data order of every variant)."""
    from mmcompact.analysis import mean_ci, paired_diff, welch_p
    d = digits(metric_name)
    lines = [f'| variant | deploy MACs (backbone) | {metric_name} per seed | n | mean | 95% CI |',
             '|---|---|---|---|---|---|']
    for name, scores in results.items():
        values = [scores[s] for s in sorted(scores)]
        if values:
            mean, half = mean_ci(values)
            lines.append(f"| {name} | {macs[name][0] / 1e6:.2f}M ({macs[name][1] / 1e6:.2f}M) | "
                         f"{', '.join(f'{v:.{d}f}' for v in values)} | "
                         f'{len(values)} | {mean:.{d}f} | +-{half:.{d}f} |')
    if teacher_score is not None:
        lines.append(f'| teacher | | {teacher_score:.{d}f} | 1 | | |')
    tests = ['| comparison | difference of means | Welch p | paired by seed: mean +- 95% CI (pairs) | paired p |',
             '|---|---|---|---|---|']
    for a, b in COMPARISONS:
        if len(results.get(a, {})) > 1 and len(results.get(b, {})) > 1:
            va, vb = list(results[a].values()), list(results[b].values())
            paired = '| |'
            if len(set(results[a]) & set(results[b])) > 1:
                mean, half, p, pairs = paired_diff(results[a], results[b])
                paired = f'| {mean:+.{d}f} +- {half:.{d}f} ({pairs}) | {p:.3g} |'
            tests.append(f'| {a} vs {b} | {sum(va) / len(va) - sum(vb) / len(vb):+.{d}f} | '
                         f'{welch_p(va, vb):.3g} {paired}')
    table = '\n'.join(lines) + '\n\n' + '\n'.join(tests)
    summary = {}
    for name, scores in results.items():
        if scores:
            mean, half = mean_ci(list(scores.values()))
            summary[name] = dict(seeds={str(k): v for k, v in scores.items()}, mean=mean, ci95=half,
                                 deploy_macs=macs[name][0], backbone_macs=macs[name][1])
    with open(os.path.splitext(path)[0] + '.json.tmp', 'w') as f:
        json.dump(dict(title=header.splitlines()[0].lstrip('# '), metric=metric_name, teacher=teacher_score,
                       variants=summary), f, indent=1)
    os.replace(os.path.splitext(path)[0] + '.json.tmp', os.path.splitext(path)[0] + '.json')
    with open(path + '.tmp', 'w') as f:
        f.write(f'{header}\n\n{table}\n\nCommands (each run: `tools/train.py`, resumable):\n\n```\n'
                + '\n'.join(commands) + '\n```\n')
    os.replace(path + '.tmp', path)
    return table


def plot_curves(path: str, work_dir: str, variants: list, metric: str, metric_name: str) -> None:
    """The validation ``metric`` of every finished or running run of ``variants`` after each validation
    (thin lines: seeds; thick: their mean), so one sees whether the students are near their plateau."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    from mmcompact.analysis import read_scalars
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for colour, name in zip(plt.rcParams['axes.prop_cycle'].by_key()['color'], ['teacher', *variants]):
        folder = os.path.join(work_dir, re.sub(r'[^a-z0-9]+', '_', name.lower()).strip('_'))
        runs = [os.path.join(folder, d) for d in sorted(os.listdir(folder))] if os.path.isdir(folder) else []
        curves = [[r[metric] for r in read_scalars(run) if metric in r] for run in (runs if name != 'teacher'
                                                                                     else [folder])]
        curves = [c for c in curves if c]
        for curve in curves:
            ax.plot(range(1, len(curve) + 1), curve, color=colour, alpha=0.3, lw=0.8)
        full = [c for c in curves if len(c) == max(map(len, curves))] if curves else []
        if full:
            ax.plot(range(1, len(full[0]) + 1), [sum(v) / len(v) for v in zip(*full)], color=colour, lw=2,
                    label=f'{name} (mean of {len(full)})')
    ax.set_xlabel('validation (epoch, or validation interval)')
    ax.set_ylabel(metric_name)
    ax.set_title('Validation curves')
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot(path: str, results: dict, teacher_score, metric_name: str, title: str) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    from mmcompact.analysis import mean_ci
    names = [n for n in results if results[n]]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    stats = [mean_ci(list(results[n].values())) for n in names]
    ax.bar(range(len(names)), [m for m, _ in stats], yerr=[0 if h != h else h for _, h in stats], capsize=6,
           color='#9ecae1')
    for i, n in enumerate(names):
        ax.scatter([i] * len(results[n]), list(results[n].values()), color='black', zorder=3, s=12)
    ax.set_xticks(range(len(names)), [n.replace(' + ', '\n+ ').replace(' (', '\n(') for n in names], fontsize=8)
    if teacher_score is not None:
        ax.axhline(teacher_score, linestyle='--', color='gray', label=f'teacher {teacher_score:.3g}')
        ax.legend()
    ax.set_ylabel(f'{metric_name} (mean, 95% CI; dots: seeds)')
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


class StudyInputError(ValueError):
    """A study input is wrong (one line, printed as the study's error)."""


def make_data(args, data: str) -> None:
    """Generate the synthetic dataset of --task cls / det into ``data`` (through ``data.part``, renamed when
    complete) unless it is there; Fashion-MNIST is prepared by tools/misc/prepare_fashion_mnist.py."""
    from tqdm import tqdm

    from mmcompact.data import make_classification, make_coco_detection
    if args.task == 'fmnist' or os.path.isdir(os.path.join(data, 'val')) or args.report_only:
        return
    with tqdm(total=args.num_train + args.num_val, desc='synthetic data', unit='img') as bar:
        if args.task != 'cls':
            make_coco_detection(data + '.part', args.num_train, args.num_val, progress=bar.update, **DET_DATA)
        else:
            make_classification(data + '.part', args.num_train, args.num_val, CLS_DATA['classes'],
                                size=CLS_DATA['size'], family_size=CLS_DATA['family_size'],
                                clutter=CLS_DATA['clutter'], progress=bar.update)
    os.replace(data + '.part', data)


def study_header(args, note: str) -> str:
    """The first lines of results.md: what was trained, on which data, in which environment."""
    from mmcompact.analysis import package_versions
    title = 'Detection transfer of learned structures' if args.task == 'det-transfer' else 'Recipe study'
    if args.task == 'fmnist':
        header = (f'# {title} (Fashion-MNIST, 60,000 train / 10,000 test images padded to 32 px, {note}, '
                  f'seeds {args.seeds})')
    else:
        header = (f'# {title} (synthetic {args.task}, {args.num_train} train / {args.num_val} val images, '
                  f'{note}, seeds {args.seeds})')
        header += ("\n\nData: `make_coco_detection(..., " + ', '.join(f'{k}={v}' for k, v in DET_DATA.items()) + ')`'
                   if args.task != 'cls' else
                   f"\n\nData: `make_classification(..., num_classes={CLS_DATA['classes']}, "
                   f"family_size={CLS_DATA['family_size']}, size={CLS_DATA['size']}, clutter={CLS_DATA['clutter']})`")
    return header + (f'\n\nEnvironment of this invocation: {package_versions()} (`tools/misc/constraints.txt` pins '
                     'them).')


def prepare(args) -> dict:
    """Everything a study needs before it trains, inputs checked first (StudyInputError): its work dir, the
    teacher, the variants (filtered by --variants), the metric, their deploy MACs, the scores of --merge, the
    header of results.md."""
    from mmcompact.cli import deploy_macs
    det = args.task not in ('cls', 'fmnist')
    work_dir = os.path.abspath(args.work_dir or {'cls': 'work_dirs/recipe_study', 'det': 'work_dirs/recipe_study_det',
                                                 'det-transfer': 'work_dirs/structure_transfer',
                                                 'fmnist': 'work_dirs/fashion_mnist_recipe'}[args.task])
    data = os.path.abspath(args.data_root) if args.task == 'fmnist' else os.path.join(work_dir, 'data')
    if args.report_only and not os.path.isdir(work_dir):
        raise StudyInputError(f'--work-dir {work_dir} does not exist: --report-only reports the finished runs of a '
                              'study that ran there (pass the --work-dir of that study)')
    plan = {'cls': cls_plan, 'det': det_plan, 'det-transfer': transfer_plan, 'fmnist': fmnist_plan}[args.task]
    try:  # inputs checked (and transfer students written) before any long work
        teacher, variants, metric, note, students = plan(args, data, work_dir)
    except (FileNotFoundError, ValueError) as err:
        raise StudyInputError(str(err)) from err
    unknown = set(args.variants or []) - set(variants)
    if unknown:
        raise StudyInputError(f'unknown --variants {sorted(unknown)}; this task has {list(variants)}')
    make_data(args, data)
    variants = {name: v for name, v in variants.items() if not args.variants or name in args.variants}
    metric_name = 'bbox mAP' if det else 'top-1 (%)'
    merged_teacher, merged = None, {}
    if args.merge:
        try:
            merged_teacher, merged = merged_scores(args.merge, metric_name)
        except (OSError, ValueError, KeyError) as err:
            raise StudyInputError(f'--merge {args.merge}: {err}') from err
    teacher_macs = deploy_macs({'teacher': teacher[0]}, {'teacher': (None, {})}, 32)['teacher'][0] \
        if args.task == 'fmnist' else None
    return dict(work_dir=work_dir, teacher=teacher, variants=variants, metric=metric, metric_name=metric_name,
                macs=deploy_macs(students, variants, 160 if det else 32 if args.task == 'fmnist' else CLS_DATA['size']),
                teacher_macs=teacher_macs,
                merged_teacher=merged_teacher, merged=merged, header=study_header(args, note),
                threads=args.threads or (1 if args.jobs > 1 else max(1, os.cpu_count() or 1)))


def make_jobs(args, study: dict) -> list:
    """(name, seed, config, options, run dir) of the teacher (seed None) and of every variant and seed, in
    the order they run: teacher first, then the runs that do not need it, so they fill the other workers
    meanwhile; each group seed by seed (an interrupted study has every variant at its first seeds). With the
    teacher already trained, seed by seed across all variants (paired results). No teacher job when no
    variant distils and none is trained (a plain-only study trains none)."""
    from mmcompact.cli import finished_metric
    teacher_dir = os.path.join(study['work_dir'], 'teacher')
    teacher = ('teacher', None, study['teacher'][0], study['teacher'][1], teacher_dir)
    jobs = []
    for name, (config, options) in study['variants'].items():
        for seed in args.seeds:
            run_dir = os.path.join(study['work_dir'], re.sub(r'[^a-z0-9]+', '_', name.lower()).strip('_'),
                                   f'seed{seed}')
            per_seed = {k: v.replace('{seed}', str(seed)) if isinstance(v, str) else v for k, v in options.items()}
            jobs.append((name, seed, config, {**per_seed, 'randomness.seed': seed}, run_dir))
    teacher_ready = finished_metric(teacher_dir, study['metric']) is not None
    ordered = sorted(jobs, key=lambda j: (j[1],) if teacher_ready else ('model.teacher_checkpoint' in j[3], j[1]))
    needs_teacher = any('model.teacher_checkpoint' in j[3] for j in jobs)
    return [teacher] + ordered if needs_teacher or teacher_ready else ordered


def command_line(config: str, run_dir: str, options: dict) -> str:
    """The tools/train.py command of one run, paths relative to the repository root."""
    return 'python tools/train.py ' + ' '.join(os.path.relpath(a, ROOT) if os.path.isabs(a) else a
                                               for a in command(config, run_dir, options))


def run_study(args, study: dict, jobs: list) -> tuple:
    """Train (or reuse, or take from --merge) every job, ``args.jobs`` at a time, rewriting results.md /
    .json / .png after every finished run. Returns (results {variant: {seed: score}}, teacher score, the
    failure messages, the commands)."""
    from mmcompact.cli import finished_metric, plot_vs_macs, run_jobs, train_or_reuse
    metric, metric_name, merged = study['metric'], study['metric_name'], study['merged']
    commands = [command_line(config, run_dir, options) for _, _, config, options, run_dir in jobs]
    header = study['header']
    # a run this work dir has not finished takes the merged score instead of training
    stand_in = {(name, seed): merged[name][seed] for name, seed, _, _, run_dir in jobs
                if name != 'teacher' and seed in merged.get(name, {}) and finished_metric(run_dir, metric) is None}
    if stand_in:
        header += (f'\n\n{len(stand_in)} scores from `{os.path.relpath(os.path.abspath(args.merge), ROOT)}` '
                   f'(an earlier invocation, same commands): '
                   + ', '.join(f'{name} seeds {sorted(s for n, s in stand_in if n == name)}'
                               for name in dict.fromkeys(n for n, _ in stand_in)))
    results, scores = {name: {} for name in study['variants']}, {}
    teacher_done, lock = threading.Event(), threading.Lock()
    title = {'cls': f'{args.student} student, same deploy network',
             'fmnist': f'Fashion-MNIST, {args.student} student, same deploy network',
             'det': 'RetinaNet-GhostNetV3-0.5x student, same deploy network',
             'det-transfer': f"RetinaNet with the structure study's {args.budget} backbones"}[args.task]

    def run(job, bar):
        name, seed, config, options, run_dir = job
        if name != 'teacher' and 'model.teacher_checkpoint' in options and not args.report_only:
            teacher_done.wait()
            if 'teacher' not in scores:
                raise RuntimeError(f"the teacher did not train: see {study['work_dir']}/teacher/train.log")
        try:
            score = stand_in[name, seed] if (name, seed) in stand_in else train_or_reuse(
                TRAIN, config, run_dir, metric, options, study['threads'], report_only=args.report_only,
                missing_metric=0.0)  # CocoMetric logs nothing when no detection passes the score threshold
            if name == 'teacher' and args.merge and score is not None and score != study['merged_teacher']:
                raise RuntimeError(f"the teacher scores {score} here and {study['merged_teacher']} in --merge "
                                   f"{args.merge}: the earlier runs are not comparable with this work dir's "
                                   '(different data or teacher); drop --merge')
        finally:
            if name == 'teacher':
                teacher_done.set()
        with lock:
            bar.update(1)
            if score is None:  # --report-only: not finished, left out
                return
            (scores.__setitem__('teacher', score) if name == 'teacher' else results[name].__setitem__(seed, score))
            bar.write(f'== {name}' + ('' if seed is None else f', seed {seed}')
                      + f': {metric_name} {score:.{digits(metric_name)}f}')
            report(os.path.join(study['work_dir'], 'results.md'), results, scores.get('teacher'), metric_name,
                   header, commands, study['macs'])
            plot(os.path.join(study['work_dir'], 'recipe_study.png'), results, scores.get('teacher'), metric_name,
                 title)
            plot_curves(os.path.join(study['work_dir'], 'curves.png'), study['work_dir'], list(study['variants']),
                        metric, metric_name)
            if args.task == 'fmnist':
                plot_vs_macs(os.path.join(study['work_dir'], 'macs.png'), results, scores.get('teacher'),
                             study['macs'], study['teacher_macs'], title)

    failures = run_jobs(jobs, run, args.jobs, 'recipe study', lambda job: f'{job[0]} seed {job[1]}')
    return results, scores.get('teacher'), failures, commands, header


def main(argv=None) -> int:
    args = parse_args(argv)
    start = time.time()
    try:
        study = prepare(args)
    except StudyInputError as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    results, teacher, failures, commands, header = run_study(args, study, make_jobs(args, study))
    table = report(os.path.join(study['work_dir'], 'results.md'), results, teacher, study['metric_name'], header,
                   commands, study['macs'])
    print(table)
    print(f"wrote {study['work_dir']}/results.md and recipe_study.png in {(time.time() - start) / 60:.1f} min")
    for failure in failures:
        print(f'error: {failure}', file=sys.stderr)
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
