"""Does the GhostNetV3 recipe help at small scale? The same deploy network trained several ways, several
seeds, on synthetic classification (class families) or COCO-format detection data.

    python tools/recipe_study.py [--task cls] [--work-dir work_dirs/recipe_study] [--seeds 0 1 2 3 4]
                                 [--epochs 5] [--lr 2e-3] [--teacher-epochs 20] [--num-train 6000]
                                 [--num-val 1800] [--jobs 2]
    python tools/recipe_study.py --task det [--iters 600] [--teacher-iters 2000] [--num-train 400]
                                 [--num-val 80] ...
    python tools/recipe_study.py --task det-transfer --structure-dir work_dirs/structure_study --budget 10.54M
                                 [--variants learned uniform] [--iters 600] ...

Classification (configs/study/kd_families/): 18 classes in 6 families of 3 (a shape with no mark, a dot,
a bar), 48x48 images without clutter; GhostNetV3-0.5x students, a ResNet-18 teacher trained once for
longer; variants plain, re-param, re-param + KD, re-param + DKD, full recipe (re-param + KD + EMA).
``--student resnet18-0.25x``: a quarter-width ResNet-18 re-parameterized by ``mmcompact.Reparameterized``, a
student that learns this data faster than GhostNetV3-0.5x (re-param: 85.5% top-1 after 16 epochs, against
34.4% after 12 for GhostNetV3-0.5x; results/recipe_study.md).
Detection: the easy synthetic COCO set (3 shape classes, 128-160 px images with 1-3 objects of 20-50% of
the side on plain gradient backgrounds); RetinaNet with a GhostNetV3-0.5x backbone, a RetinaNet-R18-FPN
teacher trained once for longer; variants plain, re-param, re-param + KD (PKD on the FPN + head logit KD),
full recipe (+ EMA).
Detection transfer (issue 15): the structure study's trained classifiers at one budget (one per method and
seed: learned, uniform, ...) each become the backbone of the same RetinaNet-FPN (configs/study/structure_det/),
initialised from that classifier (the seed's own), fine-tuned on the detection data with the detection KD
recipe (PKD + head KD from the same teacher as --task det); COCO mAP per method, seed by seed.

Every run is a `tools/train.py` process (``--jobs`` at a time, one thread each); a finished run is reused
and an interrupted one resumes from its last checkpoint, so re-running the same command continues the
study. results.md (per-seed table, mean with 95% confidence interval, Welch and paired tests, the commands),
results.json (the same numbers, read by tools/demo.py) and recipe_study.png are rewritten after every
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

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN = os.path.join(ROOT, 'tools', 'train.py')
CLS = os.path.join(ROOT, 'configs', 'study', 'kd_families')
DEMO = os.path.join(ROOT, 'configs', 'demo')
DET = os.path.join(ROOT, 'configs', 'study', 'kd_det')
TRANSFER = os.path.join(ROOT, 'configs', 'study', 'structure_det')
CLS_DATA = dict(classes=18, family_size=3, size=48, clutter=False)
DET_DATA = dict(num_classes=3, size_range=(128, 160), max_objects=3, clutter=False)
# cls students: configs/study/kd_families/<name>{,_kd,_dkd,_recipe}.py (and <name>{,_kd}_randaug.py)
CLS_STUDENTS = ('ghostnetv3-0.5x', 'resnet18-0.25x')
# (a, b): the comparisons the study exists for; Welch's test of a against b.
COMPARISONS = [('re-param', 'plain'), ('re-param + KD', 're-param'), ('re-param + DKD', 're-param'),
               ('full recipe (re-param + KD + EMA)', 're-param'), ('learned', 'uniform'), ('predicted', 'uniform'),
               ('uniform-init', 'uniform')]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--task', choices=['cls', 'det', 'det-transfer'], default='cls')
    parser.add_argument('--work-dir', help='default: work_dirs/recipe_study (cls), work_dirs/recipe_study_det')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2, 3, 4])
    parser.add_argument('--epochs', type=int, default=5, help='cls: student epochs')
    parser.add_argument('--teacher-epochs', type=int, default=20, help='cls: teacher epochs')
    parser.add_argument('--lr', type=float, default=2e-3, help="cls: the students' AdamW learning rate")
    parser.add_argument('--student', choices=CLS_STUDENTS, default='ghostnetv3-0.5x',
                        help='cls: the student network (configs/study/kd_families/<student>*.py)')
    parser.add_argument('--augment', choices=['flips', 'randaug'], default='flips',
                        help="cls: the students' training augmentation: random flips, or flips + the GhostNetV3 "
                             "recipe's RandAugment + RandomErasing (configs/study/kd_families/*_randaug.py; "
                             're-param and re-param + KD only)')
    parser.add_argument('--iters', type=int, default=600, help='det: student training iterations')
    parser.add_argument('--teacher-iters', type=int, default=2000, help='det: teacher training iterations')
    parser.add_argument('--num-train', type=int, help='default: 6000 (cls), 400 (det)')
    parser.add_argument('--num-val', type=int, help='default: 1800 (cls), 80 (det)')
    parser.add_argument('--variants', nargs='+', help='run only these variants (default: all of the task; '
                        'det-transfer: learned uniform)')
    parser.add_argument('--structure-dir', default='work_dirs/structure_study',
                        help='det-transfer: the work dir of tools/structure_study.py')
    parser.add_argument('--budget', default='10.54M', help="det-transfer: the structure study's budget folder")
    parser.add_argument('--jobs', type=int, default=1, help='training processes at a time (one thread each '
                                                             'when more than one)')
    parser.add_argument('--report-only', action='store_true',
                        help='train nothing: report the finished runs of --work-dir among --variants and --seeds '
                             '(pools seeds trained by separate invocations; unfinished ones are left out)')
    parser.add_argument('--merge', metavar='JSON',
                        help="the results.json of an earlier invocation of this study whose work dir is gone (e.g. "
                             "results/recipe_study_r18s.json): its per-seed scores stand in for the runs of "
                             "--variants and --seeds that --work-dir has not finished (those are not trained); "
                             "its teacher's score must equal this work dir's")
    parser.add_argument('--threads', type=int, default=None,
                        help='threads per training process (default: 1 with --jobs > 1, else every core); 1 when '
                             'another study shares the machine')
    args = parser.parse_args(argv)
    det = args.task != 'cls'
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
    from mmcompact.apis import PLAIN_GHOSTNET_OPTIONS, epoch_overrides as epochs
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


def det_teacher(args, work_dir: str, common: dict):
    """The detection teacher (config, options, checkpoint) and the students' schedule options. The studies'
    teacher is the full-width RetinaNet-R18-FPN (the quick start distils from a quarter-width one): KD runs
    name it with ``model.teacher``."""
    from mmcompact.apis import schedule_overrides
    checkpoint = os.path.join(work_dir, 'teacher', f'iter_{args.teacher_iters}.pth')
    teacher = (f'{DEMO}/teacher_retinanet_r18_fpn_synthetic.py',
               {**common, **schedule_overrides(args.teacher_iters)}, checkpoint)
    return teacher, {**common, **schedule_overrides(args.iters)}


def det_plan(args, data: str, work_dir: str):
    """As ``cls_plan``, for detection."""
    from mmcompact.apis import PLAIN_GHOSTNET_OPTIONS, coco_data_options
    teacher, student = det_teacher(args, work_dir, coco_data_options(data))
    kd = {**student, 'model.teacher': teacher[0], 'model.teacher_checkpoint': teacher[2]}
    variants = {
        'plain': (f'{DEMO}/student_retinanet_ghostnetv3-0.5x_synthetic.py',
                  {**student, **PLAIN_GHOSTNET_OPTIONS}),
        're-param': (f'{DEMO}/student_retinanet_ghostnetv3-0.5x_synthetic.py', student),
        're-param + KD': (f'{DET}/retinanet_ghostnetv3-0.5x_kd.py', kd),
        'full recipe (re-param + KD + EMA)': (f'{DEMO}/student_retinanet_ghostnetv3-0.5x_kd_synthetic.py', kd),
    }
    note = f'students {args.iters} iterations, teacher (RetinaNet-R18-FPN) {args.teacher_iters}'
    return teacher, variants, 'coco/bbox_mAP', note, {
        name: f'{DEMO}/student_retinanet_ghostnetv3-0.5x_synthetic.py' for name in variants}


def transfer_plan(args, data: str, work_dir: str):
    """As ``cls_plan``, for the detection transfer of the structure study's classifiers: per method and seed,
    writes ``students/<method>/seed<s>.py`` (the RetinaNet whose backbone is that classifier's, initialised
    from its checkpoint; the initialisation is verified) and distils it with the detection KD recipe."""
    from mmengine.config import Config

    from mmcompact.apis import coco_data_options
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
                                    'name a finished tools/structure_study.py budget folder and --variants its '
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
    return [config, '--work-dir', run_dir, '--cfg-options'] + [f'{k}={v}' for k, v in options.items()]


def train(cmd: list, run_dir: str, metric: str, threads: int, report_only: bool = False):
    """Run one training (resuming it if it was interrupted) unless it finished before; its final metric
    (None for an unfinished run with ``report_only``)."""
    from mmcompact.analysis import final_metric
    from mmcompact.apis import run_tool
    done = final_metric(run_dir, metric)
    if done is not None or report_only:
        return done
    os.makedirs(run_dir, exist_ok=True)
    resume = ['--resume'] if os.path.isfile(os.path.join(run_dir, 'last_checkpoint')) else []
    code = run_tool(TRAIN, cmd + resume, log=os.path.join(run_dir, 'train.log'), threads=threads, cwd=ROOT)
    if code:
        raise RuntimeError(f'training failed (exit {code}): see {run_dir}/train.log')
    score = final_metric(run_dir, metric)
    if score is None:  # CocoMetric logs nothing when no detection passes the score threshold
        score = 0.0
    return score


def deploy_macs(students: dict, variants: dict, size: int) -> dict:
    """Deploy-form MACs of each variant's student network and of its backbone alone: {name: (whole,
    backbone)}. ``students``: the deploy network's config of each variant (see ``cls_plan``)."""
    from mmcompact.structure import count_deployed
    from mmcompact.utils import build_model, load_config
    macs = {}
    for name, (_, options) in variants.items():
        backbone = {k: v for k, v in options.items() if k.startswith('model.backbone.')}
        model = build_model(load_config(students[name], backbone))
        macs[name] = (count_deployed(model, (3, size, size))['macs'],
                      count_deployed(model.backbone, (3, size, size))['macs'])
    return macs


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


def main(argv=None) -> int:
    args = parse_args(argv)
    start = time.time()
    from tqdm import tqdm

    from mmcompact.apis import run_jobs
    from mmcompact.data import make_classification, make_coco_detection
    det = args.task != 'cls'
    work_dir = os.path.abspath(args.work_dir or {'cls': 'work_dirs/recipe_study', 'det': 'work_dirs/recipe_study_det',
                                                 'det-transfer': 'work_dirs/structure_transfer'}[args.task])
    data = os.path.join(work_dir, 'data')
    if args.report_only and not os.path.isdir(work_dir):
        print(f'error: --work-dir {work_dir} does not exist: --report-only reports the finished runs of a study '
              'that ran there (pass the --work-dir of that study)', file=sys.stderr)
        return 1
    plan = {'cls': cls_plan, 'det': det_plan, 'det-transfer': transfer_plan}[args.task]
    try:  # inputs checked (and transfer students written) before any long work
        teacher, variants, metric, note, students = plan(args, data, work_dir)
    except (FileNotFoundError, ValueError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    if not os.path.isdir(os.path.join(data, 'val')) and not args.report_only:
        with tqdm(total=args.num_train + args.num_val, desc='synthetic data', unit='img') as bar:
            if det:
                make_coco_detection(data + '.part', args.num_train, args.num_val, progress=bar.update,
                                    **DET_DATA)
            else:
                make_classification(data + '.part', args.num_train, args.num_val, CLS_DATA['classes'],
                                    size=CLS_DATA['size'], family_size=CLS_DATA['family_size'],
                                    clutter=CLS_DATA['clutter'], progress=bar.update)
        os.replace(data + '.part', data)
    unknown = set(args.variants or []) - set(variants)
    if unknown:
        print(f'error: unknown --variants {sorted(unknown)}; this task has {list(variants)}', file=sys.stderr)
        return 1
    variants = {name: v for name, v in variants.items() if not args.variants or name in args.variants}
    macs = deploy_macs(students, variants, 160 if det else CLS_DATA['size'])
    metric_name = 'bbox mAP' if det else 'top-1 (%)'
    merged_teacher, merged = None, {}
    if args.merge:
        try:
            merged_teacher, merged = merged_scores(args.merge, metric_name)
        except (OSError, ValueError, KeyError) as err:
            print(f'error: --merge {args.merge}: {err}', file=sys.stderr)
            return 1
    threads = args.threads or (1 if args.jobs > 1 else max(1, os.cpu_count() or 1))
    title = 'Detection transfer of learned structures' if args.task == 'det-transfer' else 'Recipe study'
    header = (f'# {title} (synthetic {args.task}, {args.num_train} train / {args.num_val} val images, '
              f'{note}, seeds {args.seeds})')
    if det:
        header += (f"\n\nData: `make_coco_detection(..., "
                   + ', '.join(f'{k}={v}' for k, v in DET_DATA.items()) + ')`')
    else:
        header += (f"\n\nData: `make_classification(..., num_classes={CLS_DATA['classes']}, "
                   f"family_size={CLS_DATA['family_size']}, size={CLS_DATA['size']}, "
                   f"clutter={CLS_DATA['clutter']})`")

    from mmcompact.analysis import package_versions
    header += f'\n\nEnvironment of this invocation: {package_versions()} (`tools/constraints.txt` pins them).'

    teacher_dir = os.path.join(work_dir, 'teacher')
    jobs = [('teacher', None, command(teacher[0], teacher_dir, teacher[1]), teacher_dir)]
    for name, (config, options) in variants.items():
        for seed in args.seeds:
            run_dir = os.path.join(work_dir, re.sub(r'[^a-z0-9]+', '_', name.lower()).strip('_'), f'seed{seed}')
            per_seed = {k: v.replace('{seed}', str(seed)) if isinstance(v, str) else v for k, v in options.items()}
            jobs.append((name, seed, command(config, run_dir, {**per_seed, 'randomness.seed': seed}), run_dir))
    commands = ['python tools/train.py ' + ' '.join(os.path.relpath(a, ROOT) if os.path.isabs(a) else a
                                                    for a in cmd) for _, _, cmd, _ in jobs]
    results = {name: {} for name in variants}
    scores = {}
    # a run this work dir has not finished takes the merged score instead of training
    from mmcompact.analysis import final_metric
    stand_in = {(name, seed): merged[name][seed] for name, seed, _, run_dir in jobs[1:]
                if seed in merged.get(name, {}) and final_metric(run_dir, metric) is None}
    if stand_in:
        header += (f'\n\n{len(stand_in)} scores from `{os.path.relpath(os.path.abspath(args.merge), ROOT)}` '
                   f'(an earlier invocation, same commands): '
                   + ', '.join(f'{name} seeds {sorted(s for n, s in stand_in if n == name)}'
                               for name in dict.fromkeys(n for n, _ in stand_in)))
    teacher_done = threading.Event()
    lock = threading.Lock()

    def run(job, bar):
        name, seed, cmd, run_dir = job
        if name != 'teacher' and 'model.teacher_checkpoint' in ' '.join(cmd) and not args.report_only:
            teacher_done.wait()
            if 'teacher' not in scores:
                raise RuntimeError('the teacher did not train: see ' + teacher_dir + '/train.log')
        try:
            score = stand_in.get((name, seed)) if (name, seed) in stand_in else \
                train(cmd, run_dir, metric, threads, args.report_only)
            if name == 'teacher' and args.merge and score is not None and score != merged_teacher:
                raise RuntimeError(f'the teacher scores {score} here and {merged_teacher} in --merge {args.merge}: '
                                   'the earlier runs are not comparable with this work dir\'s (different data or '
                                   'teacher); drop --merge')
        finally:
            if name == 'teacher':
                teacher_done.set()
        if score is None:  # --report-only: not finished, left out
            bar.update(1)
            return None
        with lock:
            if name == 'teacher':
                scores['teacher'] = score
            else:
                results[name][seed] = score
            bar.update(1)
            bar.write(f'== {name}' + ('' if seed is None else f', seed {seed}')
                      + f': {metric_name} {score:.{digits(metric_name)}f}')
            report(os.path.join(work_dir, 'results.md'), results, scores.get('teacher'), metric_name, header,
                   commands, macs)
            plot(os.path.join(work_dir, 'recipe_study.png'), results, scores.get('teacher'), metric_name, {
                'cls': f'{args.student} student, same deploy network',
                'det': 'RetinaNet-GhostNetV3-0.5x student, same deploy network',
                'det-transfer': f'RetinaNet with the structure study\'s {args.budget} backbones'}[args.task])
        return score

    # Teacher first, then the runs that do not need it, so that they fill the other workers meanwhile; each
    # group seed by seed, so that an interrupted study has every variant at its first seeds. With the
    # teacher already trained (reused), seed by seed across all variants, so that an interrupted study has
    # paired results.
    teacher_ready = final_metric(teacher_dir, metric) is not None
    ordered = [jobs[0]] + sorted(jobs[1:], key=lambda j: (
        (j[1],) if teacher_ready else ('model.teacher_checkpoint' in ' '.join(j[2]), j[1])))
    failures = run_jobs(ordered, run, args.jobs, 'recipe study', lambda job: f'{job[0]} seed {job[1]}')
    table = report(os.path.join(work_dir, 'results.md'), results, scores.get('teacher'), metric_name, header,
                   commands, macs)
    print(table)
    print(f'wrote {work_dir}/results.md and recipe_study.png in {(time.time() - start) / 60:.1f} min')
    for failure in failures:
        print(f'error: {failure}', file=sys.stderr)
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
