"""Does the learned structure beat a uniform width multiplier of the teacher at the same deploy MACs?

    python projects/studies/structure_study.py [--family resnet18c] [--work-dir work_dirs/structure_study]
                                    [--budgets 8M 16M 24M] [--seeds 0 1 2 3 4] [--epochs 12] [--jobs 2]
                                    [--predictor PREDICTOR_JSON]
    python projects/studies/structure_study.py --family resnet18c-fmnist [--data-root data/fashion_mnist] ...

The protocol (everything resumable: a finished step or run is reused, an interrupted one resumed):
1. data: synthetic classification, 6 shapes with a distractor shape and clutter, 4000 / 1000 images, 32x32
   (resnet18c) or 64x64 (mobilenetv2); or Fashion-MNIST padded to 32x32 (resnet18c-fmnist: 60,000 / 10,000,
   prepared by tools/misc/prepare_fashion_mnist.py);
2. teacher: mmpretrain ResNetV1c-18 (projects/studies/configs/resnet18c_32px_cls.py, resnet18c_fashion-mnist_cls.py)
   or MobileNetV2 1.0x (projects/studies/configs/mobilenetv2_64px_cls.py), --teacher-epochs;
3. search: configs/structure/<family>_<size>px_width_search.py (every stage a block, searchable widths between
   them), seed 0, and again with seed 1 to check that the chosen structures are stable;
4. per budget: "learned" = the exact selection's structure with its block-distilled initialisation,
   fine-tuned with logit KD from the teacher; "uniform" = the teacher with every width scaled by one
   multiplier (rounded per stage to 8 channels, its own blocks: FAMILIES), the largest within the budget and at most 3%
   under it,
   trained with the same KD recipe from scratch; "random" = a random structure of the same space within
   90-100% of the budget, same initialisation and recipe; "no-init" = the learned structure from random
   initialisation; "no-KD" = the learned structure with its initialisation, trained without KD;
   "predicted" (with --predictor) = the structure selected by a calibrated predictor's accuracy;
   "uniform-init" = the uniform network with the block-distilled initialisation of its own blocks, where
   its widths are in the searched space, else the largest width multiplier of the space itself within 3%
   under the budget (it separates the structure from the initialisation the other way round); random and
   no-KD at --ablation-budgets, the others at every budget;
5. every student trains --epochs with the same recipe (AdamW, cosine, the teacher's runtime), --seeds each.

Writes results.md (mean with 95% confidence interval, Welch test against uniform), measured.json, study.png
(top-1 vs deploy MACs) and the search's plots.
"""
import argparse
import json
import os
import random
import shlex
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
METHODS = ['learned', 'predicted', 'uniform', 'uniform-init', 'random', 'no-init', 'no-KD']
# run at every budget; the others (ablations) at --ablation-budgets only. no-init is here because it separates
# the selected structure from its initialisation, the question the study turns on.
EVERY_BUDGET = ('learned', 'predicted', 'uniform', 'uniform-init', 'no-init')
METRIC = 'accuracy/top1'
# exported configs start from the search's (which trained on a subset): students use all the data
STUDENT_DATA = {'train_dataloader.dataset.indices': None, 'val_dataloader.dataset.indices': None}
_INVERTED = dict(type='InvertedResidual', kernel_size=3)
RESNET18C_BLOCKS = dict(stem=dict(type='ConvStack', num_convs=3, hidden_ratio=0.5),  # mmpretrain's deep stem
                        **{f'layer{i}': dict(type='BasicResidual', width_ratio=1.0, num_blocks=2) for i in range(1, 5)})
# Teacher families: teacher and search configs, data (synthetic, or the prepared Fashion-MNIST of --data-root),
# default budgets (deploy MACs) and epochs, the students' batch size and, per searched block, the candidate that
# is the teacher's own block at any width (the uniform networks are built from these).
FAMILIES = {
    'resnet18c': dict(
        name='ResNetV1c-18', teacher=os.path.join(HERE, 'configs', 'resnet18c_32px_cls.py'),
        search=os.path.join(HERE, 'configs', 'structure', 'resnet18c_32px_width_search.py'),
        data=dict(classes=6, family_size=1, size=32), epochs=12, teacher_epochs=24, batch_size=64,
        budgets=[2.67e6, 6e6, 10.54e6],  # about the uniform 0.25x and 0.5x networks (in the space), one between
        blocks=RESNET18C_BLOCKS),
    'resnet18c-fmnist': dict(
        name='ResNetV1c-18, Fashion-MNIST', teacher=os.path.join(HERE, 'configs', 'resnet18c_fashion-mnist_cls.py'),
        search=os.path.join(HERE, 'configs', 'structure', 'resnet18c_fashion-mnist_width_search.py'),
        data=dict(fashion_mnist=True, size=32), epochs=6, teacher_epochs=20, batch_size=128,
        budgets=[2.67e6, 6e6, 10.54e6], blocks=RESNET18C_BLOCKS),
    'mobilenetv2': dict(
        name='MobileNetV2', teacher=os.path.join(HERE, 'configs', 'mobilenetv2_64px_cls.py'),
        search=os.path.join(HERE, 'configs', 'structure', 'mobilenetv2_64px_width_search.py'),
        data=dict(classes=6, family_size=1, size=64), epochs=12, teacher_epochs=24, batch_size=64,
        budgets=[2.63e6, 3.71e6, 7.42e6],  # the uniform 0.25x and 0.5x networks (in the space) and half the 0.5x's
        blocks=dict(conv1=dict(type='ConvStack', num_convs=1),
                    **{f'layer{i + 1}': dict(_INVERTED, expand_ratio=e, num_blocks=n) for i, (e, n) in enumerate(
                        [(1, 1), (6, 2), (6, 3), (6, 4), (6, 3), (6, 3), (6, 1)])},
                    conv2=dict(type='ConvStack', num_convs=1, kernel_size=1))),
}


def parse_args(argv=None):
    from mmcompact.analysis import parse_amount
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--family', choices=sorted(FAMILIES), default='resnet18c',
                        help='the teacher family: ResNetV1c-18 at 32x32 (synthetic data, or Fashion-MNIST padded to '
                        '32) or MobileNetV2 at 64x64')
    parser.add_argument('--data-root', default='data/fashion_mnist',
                        help='resnet18c-fmnist: the folder of tools/misc/prepare_fashion_mnist.py')
    parser.add_argument('--work-dir', help='default: work_dirs/structure_study (resnet18c), '
                        'work_dirs/structure_study_<family> (others)')
    parser.add_argument('--budgets', type=parse_amount, nargs='+',
                        help="default: about the MACs of the family's uniform 0.25x and 0.5x networks (both in the "
                        'searched space) and one between them')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2, 3, 4])
    parser.add_argument('--epochs', type=int, help='student epochs, every method (default: 12; 6 on Fashion-MNIST)')
    parser.add_argument('--teacher-epochs', type=int, help='default: 24; 20 on Fashion-MNIST')
    parser.add_argument('--search-epochs', type=int, default=3, help='at most (plateau stopping)')
    parser.add_argument('--search-images', type=int, default=2000,
                        help='training images of the block-wise search (the first N; students use all)')
    parser.add_argument('--num-train', type=int, default=4000, help='synthetic training images')
    parser.add_argument('--num-val', type=int, default=1000, help='synthetic validation images')
    parser.add_argument('--methods', nargs='+', choices=METHODS,
                        help='default: all ("predicted" only with --predictor)')
    parser.add_argument('--predictor',
                        help='predictor.json of tools/structure/calibrate_predictor.py: adds "predicted", '
                        'the structure selected by predicted accuracy (block-distilled init, KD)')
    parser.add_argument('--ablation-budgets', type=parse_amount, nargs='*',
                        help='budgets of the random and no-KD runs (default: the middle budget)')
    parser.add_argument('--search-seeds', type=int, nargs='+', default=[0, 1],
                        help='the first picks the structures; the others check their stability')
    parser.add_argument('--jobs', type=int, default=2, help='training processes at a time (one thread each)')
    args = parser.parse_args(argv)
    family = FAMILIES[args.family]
    args.budgets = args.budgets or family['budgets']
    args.epochs = args.epochs or family['epochs']
    args.teacher_epochs = args.teacher_epochs or family['teacher_epochs']
    args.work_dir = args.work_dir or ('work_dirs/structure_study' if args.family == 'resnet18c' else
                                      f'work_dirs/structure_study_{args.family}')
    if args.methods is None:
        args.methods = [m for m in METHODS if m != 'predicted' or args.predictor]
    if 'predicted' in args.methods and not args.predictor:
        parser.error('--methods predicted needs --predictor (the predictor.json of '
                     'tools/structure/calibrate_predictor.py)')
    if args.predictor and not os.path.isfile(args.predictor):
        parser.error(f'--predictor {args.predictor!r} does not exist')
    if args.ablation_budgets is None:
        args.ablation_budgets = [sorted(args.budgets)[len(args.budgets) // 2]]
    if min(args.epochs, args.teacher_epochs, args.search_epochs, args.jobs) < 1:
        parser.error('--epochs, --teacher-epochs, --search-epochs and --jobs must be >= 1')
    return args


def uniform_config(cfg, search_result: dict, widths: list, family: dict):
    """The teacher config with a ``StructuredBackbone`` of the teacher ``family`` at ``widths``."""
    from mmengine.config import Config
    student = Config(dict(cfg.to_dict()))
    student.pop('structure_search', None)
    blocks, previous = {}, search_result['blocks'][0]['in_channels']
    for block, width in zip(search_result['blocks'], widths):
        blocks[block['path']] = dict(family['blocks'][block['path']], in_channels=previous, out_channels=width,
                                     stride=block['stride'])
        previous = width
    student.model.backbone = dict(type='mmcompact.StructuredBackbone', backbone=cfg.model.backbone,
                                  blocks=blocks)
    student.model.head.in_channels = widths[-1]
    return student


def matched_uniform(cfg, search_result: dict, budget: float, input_shape, family: dict, tolerance: float = 0.03):
    """The uniform-width student with the most deploy MACs within ``budget``: per multiplier m (steps of
    0.01), every boundary's width is m x the teacher's rounded down or up to a multiple of 8 (per stage, all
    combinations), costs summed from exactly counted blocks and head, the winner re-counted whole. Raises if
    it is more than ``tolerance`` under the budget. Returns (widths, MACs)."""
    import itertools
    import math

    from mmcompact.models.candidates import Interface, build_candidate
    from mmcompact.structure import count_deployed
    from mmcompact.utils import build_model
    blocks = search_result['blocks']
    num_classes = cfg.model.head.num_classes
    cache = {}

    def block_macs(b: int, w_in: int, w_out: int) -> int:
        if (b, w_in, w_out) not in cache:
            module = build_candidate(family['blocks'][blocks[b]['path']], Interface(w_in, w_out, blocks[b]['stride']))
            cache[b, w_in, w_out] = count_deployed(module, (w_in, *blocks[b]['input_shape'][1:]))['macs']
        return cache[b, w_in, w_out]

    best = (None, -1)
    for step in range(100, 4, -1):
        options = [sorted({max(8, 8 * math.floor(block['out_channels'] * step / 800)),
                           max(8, 8 * math.ceil(block['out_channels'] * step / 800))}) for block in blocks]
        for widths in itertools.product(*options):
            inputs = [blocks[0]['in_channels'], *widths[:-1]]
            macs = sum(block_macs(b, i, o) for b, (i, o) in enumerate(zip(inputs, widths))) + \
                widths[-1] * num_classes  # the linear head
            if best[1] < macs <= budget:
                best = (list(widths), macs)
    if best[0] is None:
        raise ValueError(f'no uniform width fits {budget:,.0f} MACs')
    exact = count_deployed(build_model(uniform_config(cfg, search_result, best[0], family)), input_shape)['macs']
    if exact > budget or exact < (1 - tolerance) * budget:
        raise ValueError(f'the closest uniform width {best[0]} has {exact:,.0f} MACs, not within {tolerance:.0%} '
                         f'under {budget:,.0f}')
    return best[0], exact


def searched_uniform(cfg, search_result: dict, budget: float, input_shape, family: dict, tolerance: float = 0.03):
    """The largest uniform network that the searched space itself offers (every boundary at one of
    ``structure_search.widths.ratios`` of the teacher's width, rounded as the space rounds, or the teacher's own)
    within ``budget`` and at most ``tolerance`` under it, as (choice, widths, MACs); None if there is none. It
    stands in for the budget-matched uniform widths when those (rounded per stage) are not in the space."""
    from mmcompact.structure import count_deployed
    from mmcompact.structure.space import scaled_width
    from mmcompact.utils import build_model
    widths_cfg = cfg.structure_search.widths
    best = None
    for ratio in [*widths_cfg.ratios, 1.0]:
        widths = [scaled_width(b['out_channels'], ratio, widths_cfg.get('divisor', 8)) for b in search_result['blocks']]
        choice = uniform_choice(search_result, widths, family)
        if choice is None:
            continue
        macs = count_deployed(build_model(uniform_config(cfg, search_result, widths, family)), input_shape)['macs']
        if (1 - tolerance) * budget <= macs <= budget and (best is None or macs > best[2]):
            best = (choice, widths, macs)
    return best


def random_chain(search_result: dict, budget: float, seed: int, low: float = 0.9):
    """A random structure of the search space (widths agree between blocks) within [low, 1] x budget."""
    from mmcompact.structure.knapsack import draw_structure
    rng = random.Random(seed)
    table, fixed = search_result['costs']['table'], search_result['costs']['fixed']['macs']
    sizes = [len(row) for row in table]
    for _ in range(200000):
        choice = draw_structure(rng, sizes, search_result['links'])
        macs = fixed + sum(table[b][c]['macs'] for b, c in enumerate(choice))
        if low * budget <= macs <= budget:
            return list(choice)
    raise ValueError(f'no random structure within {low:.0%}-100% of {budget:,.0f} MACs')


def uniform_choice(search_result: dict, widths: list, family: dict):
    """The uniform network at ``widths`` as a choice of the searched space (the ``family``'s own blocks at
    exactly those widths: the same candidate options and in/out channels), or None when the space does not
    offer one of them."""
    from mmcompact.models.candidates import candidate_options
    choice, previous = [], search_result['blocks'][0]['in_channels']
    for b, (block, width) in enumerate(zip(search_result['blocks'], widths)):
        wanted = candidate_options(family['blocks'][block['path']])
        matches = [c for c, (spec, link) in enumerate(zip(search_result['candidates'][b], search_result['links'][b]))
                   if list(link) == [previous, width] and candidate_options(spec) == wanted]
        if not matches:
            return None
        choice.append(matches[0])
        previous = width
    return choice


def plot(path: str, rows: list, teacher: dict, family: dict) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    colours = {'learned': '#d62728', 'predicted': '#9467bd', 'uniform': '#1f77b4', 'uniform-init': '#17becf',
               'random': '#7f7f7f', 'no-init': '#ff7f0e', 'no-KD': '#2ca02c'}
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for method in colours:
        points = [r for r in rows if r['method'] == method]
        if points:
            ax.errorbar([r['macs'] / 1e6 for r in points], [r['mean'] for r in points],
                        yerr=[0 if r['ci'] != r['ci'] else r['ci'] for r in points], fmt='o-' if method in
                        ('learned', 'uniform') else 'o', color=colours[method], label=method, capsize=3)
    if teacher.get('top1') is not None:
        ax.axhline(teacher['top1'], ls='--', color='black', lw=1,
                   label=f"teacher ({teacher['macs'] / 1e6:.1f}M MACs)")
    ax.set_xlabel(f"deploy MACs (M), {family['data']['size']}x{family['data']['size']} input")
    ax.set_ylabel('top-1 (%), mean and 95% CI over seeds')
    ax.set_title(f"Learned structure vs uniform width ({family['name']} teacher)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


class Study:
    """The state one invocation shares between its steps: settings, folders, the log, the commands run."""

    def __init__(self, args, argv):
        self.args, self.family = args, FAMILIES[args.family]
        self.work_dir = os.path.abspath(args.work_dir)
        self.data = os.path.abspath(args.data_root) if self.family['data'].get('fashion_mnist') else \
            os.path.join(self.work_dir, 'data')
        self.data_options = {f'{split}.dataset.data_root': self.data
                             for split in ('train_dataloader', 'val_dataloader', 'test_dataloader')}
        self.threads = 1 if args.jobs > 1 else None
        self.commands = [f'python projects/studies/structure_study.py '
                         f'{shlex.join(argv if argv is not None else sys.argv[1:])}']
        os.makedirs(self.work_dir, exist_ok=True)
        self.log = os.path.join(self.work_dir, 'study.log')
        self.teacher_dir = os.path.join(self.work_dir, 'teacher')
        self.teacher_ckpt = os.path.join(self.teacher_dir, f'epoch_{args.teacher_epochs}.pth')

    def tool(self, name: str, argv: list) -> None:
        """Run tools/<name>.py (e.g. 'structure/search_structure') with ``argv``, logged to study.log."""
        from mmcompact.cli import run_tool
        shown = [os.path.relpath(a, ROOT) if isinstance(a, str) and os.path.isabs(a) else str(a) for a in argv]
        self.commands.append(f'python tools/{name}.py ' + ' '.join(shown))
        if run_tool(os.path.join(ROOT, 'tools', f'{name}.py'), argv, log=self.log):
            raise RuntimeError(f'tools/{name}.py failed (see {self.log}): {shown}')

    def schedule(self, epochs: int) -> dict:
        """--cfg-options of an ``epochs`` schedule in this family's configs (validation at the end, a
        checkpoint every epoch): the Fashion-MNIST configs warm up for one epoch (LinearLR), then cosine."""
        from mmcompact.cli import epoch_overrides, warmup_cosine_epoch_overrides
        return (warmup_cosine_epoch_overrides if self.family['data'].get('fashion_mnist') else epoch_overrides)(epochs)

    def options(self, extra: dict) -> list:
        return ['--cfg-options'] + [f'{k}={v}' for k, v in dict(self.data_options, **extra).items()]

    def search(self, seed: int) -> dict:
        """The block-wise search of ``seed`` (run unless finished)."""
        from mmcompact.structure import load_search
        search_dir = os.path.join(self.work_dir, f'search_seed{seed}')
        if not os.path.isfile(os.path.join(search_dir, 'search.json')):
            self.tool('structure/search_structure', [self.family['search'], '--work-dir', search_dir, '--resume']
                      + self.options({'structure_search.teacher_checkpoint': self.teacher_ckpt,
                                      'structure_search.epochs': self.args.search_epochs,
                                      'structure_search.seed': seed, 'randomness.seed': seed,
                                      'train_dataloader.batch_size': 32,
                                      'train_dataloader.dataset.indices': self.args.search_images,
                                      'val_dataloader.dataset.indices': 500}))
        return load_search(search_dir)


def data_and_teacher(study: Study):
    """Steps 1-2: the synthetic data and the teacher (each made unless there; Fashion-MNIST must be prepared).
    Returns the teacher's top-1."""
    from mmcompact.analysis import final_metric
    from mmcompact.data.fashion_mnist import check_prepared
    args, data = study.args, study.family['data']
    if data.get('fashion_mnist'):
        check_prepared(study.data, '--data-root')
    elif not os.path.isdir(os.path.join(study.data, 'val')):
        study.tool('misc/make_synthetic', ['cls', study.data, '--classes', data['classes'], '--family-size',
                                           data['family_size'], '--size', data['size'], '--num-train', args.num_train,
                                           '--num-val', args.num_val])
    if not os.path.isfile(study.teacher_ckpt):
        study.tool('train', [study.family['teacher'], '--work-dir', study.teacher_dir, '--resume'] + study.options(
            dict(study.schedule(args.teacher_epochs), **{'train_cfg.val_interval': 4})))
    return final_metric(study.teacher_dir, METRIC)


def write_student(study: Study, budget: float, method: str, result: dict, cfg, uniform_widths) -> str:
    """Step 4: the folder with student.py / student_kd.py of ``method`` at ``budget`` (written unless there),
    or None when the method has no network at this budget."""
    from mmcompact.structure import export_structure
    from mmcompact.structure.export import write_student_configs
    from mmcompact.utils import load_config
    tag = f'{budget / 1e6:g}M'
    search_dir = os.path.join(study.work_dir, f'search_seed{study.args.search_seeds[0]}')
    learned, out = os.path.join(study.work_dir, tag, 'learned'), os.path.join(study.work_dir, tag, method)
    target = learned if method in ('learned', 'no-KD') else out
    if os.path.isfile(os.path.join(target, 'student_kd.py')):
        return target
    search_config = os.path.join(search_dir, 'search_config.py')
    if method in ('learned', 'no-KD'):
        study.tool('structure/export_structure', [search_dir, '--macs', budget, '--out', learned, '--force'])
    elif method == 'predicted':
        export_structure(search_dir, dict(macs=budget), out, force=True,
                         predictor=os.path.abspath(study.args.predictor))
    elif method == 'uniform':
        write_student_configs(uniform_config(cfg, result, uniform_widths(budget), study.family), out, search_config,
                              study.teacher_ckpt, 'head.fc')
    elif method == 'uniform-init':
        widths = uniform_widths(budget)
        choice = uniform_choice(result, widths, study.family)
        if choice is None:
            found = searched_uniform(cfg, result, budget, tuple(result['input_shape']), study.family)
            if found is None:
                print(f'{tag}: neither the uniform widths {widths} nor a width multiplier of the searched space '
                      'fit the budget: no uniform-init')
                return None
            choice, in_space, macs = found
            print(f'{tag}: uniform-init uses the uniform network of the searched space {in_space} ({macs:,} MACs; '
                  f'the matched uniform widths {widths} are not in the space)')
        export_structure(search_dir, {}, out, choice=choice, force=True)
    elif method == 'random':
        export_structure(search_dir, {}, out, choice=random_chain(result, budget, seed=int(budget)), force=True)
    elif method == 'no-init':
        if not os.path.isfile(os.path.join(learned, 'student_kd.py')):
            write_student(study, budget, 'learned', result, cfg, uniform_widths)
        no_init = load_config(os.path.join(learned, 'student.py'))
        no_init.model.pop('init_cfg', None)
        write_student_configs(no_init, out, search_config, study.teacher_ckpt, 'head.fc')
    return target


def students(study: Study, result: dict) -> tuple:
    """Step 4 for every budget and method: ({(budget, method): folder}, {(budget, method): MACs and structure})."""
    from mmcompact.structure import candidate_label, count_deployed
    from mmcompact.utils import build_model, load_config
    cfg = load_config(study.family['search'], study.data_options)
    matched = {}

    def uniform_widths(budget: float) -> list:
        if budget not in matched:
            matched[budget] = matched_uniform(cfg, result, budget, tuple(result['input_shape']), study.family)[0]
        return matched[budget]

    folders, notes = {}, {}
    for budget in study.args.budgets:
        for method in study.args.methods:
            if method in EVERY_BUDGET or budget in study.args.ablation_budgets:
                folder = write_student(study, budget, method, result, cfg, uniform_widths)
                if folder is not None:
                    folders[budget, method] = folder
    for key, folder in folders.items():
        student_cfg = load_config(os.path.join(folder, 'student.py'))
        notes[key] = dict(
            macs=count_deployed(build_model(student_cfg), tuple(result['input_shape']))['macs'],
            structure=', '.join(f"{path}: {candidate_label(spec)} {spec['in_channels']}>{spec['out_channels']}"
                                for path, spec in student_cfg.model.backbone.blocks.items()))
    return folders, notes


def summary_rows(study: Study, measured: dict, notes: dict) -> list:
    """One row per budget and method: MACs, seeds, mean with 95% CI, difference and Welch p against uniform."""
    from mmcompact.analysis import mean_ci, welch_p
    rows = []
    for budget in study.args.budgets:
        uniform = [measured[k] for k in measured if k[0] == budget and k[1] == 'uniform']
        for method in study.args.methods:
            values = [measured[k] for k in sorted(measured) if k[0] == budget and k[1] == method]
            if values:
                mean, ci = mean_ci(values)
                rows.append(dict(budget=budget, method=method, macs=notes[budget, method]['macs'], n=len(values),
                                 values=values, mean=mean, ci=ci,
                                 delta=mean - sum(uniform) / len(uniform) if uniform and method != 'uniform' else None,
                                 p=welch_p(values, uniform) if method != 'uniform' else None))
    return rows


def train_students(study: Study, folders: dict, notes: dict, teacher: dict) -> tuple:
    """Step 5: every student run (the every-budget methods first, seed by seed; then the ablations), reused
    or resumed; measured.json and study.png rewritten after each. Returns (measured, failures)."""
    from mmcompact.cli import run_jobs, train_or_reuse
    args = study.args
    jobs = [(budget, method, seed, os.path.join(folder, 'student.py' if method == 'no-KD' else 'student_kd.py'),
             os.path.join(study.work_dir, f'{budget / 1e6:g}M', method, f'seed{seed}'))
            for ablation in (False, True) for seed in args.seeds for budget in args.budgets
            for method in args.methods if (budget, method) in folders and (method not in EVERY_BUDGET) == ablation
            for folder in [folders[budget, method]]]
    measured, lock = {}, threading.Lock()
    schedule = dict(study.schedule(args.epochs), **STUDENT_DATA,
                    **{'train_dataloader.batch_size': study.family['batch_size']})
    student_options = dict(study.data_options, **schedule)

    def run(job, bar):
        budget, method, seed, config, run_dir = job
        value = train_or_reuse(os.path.join(ROOT, 'tools', 'train.py'), config, run_dir, METRIC,
                               dict(student_options, **{'randomness.seed': seed}), study.threads,
                               log=os.path.join(study.work_dir, 'runs.log'))
        with lock:
            measured[budget, method, seed] = value
            write_measured(study, measured, notes, teacher)
            bar.update(1)
            bar.write(f'== {budget / 1e6:g}M {method} seed {seed}: top-1 {value:.2f}')

    failures = run_jobs(jobs, run, args.jobs, 'structure study',
                        lambda job: f'{job[1]} {job[0] / 1e6:g}M seed {job[2]}')
    study.commands.append('python tools/train.py <student config> --work-dir <run dir> [--resume] --cfg-options '
                          '<data roots> '
                          + ' '.join(f'{k}={v}' for k, v in schedule.items())
                          + ' '
                          'randomness.seed=<seed>   # per run')
    return measured, failures


def write_measured(study: Study, measured: dict, notes: dict, teacher: dict) -> list:
    """measured.json (every run, the summary rows) and study.png; returns the rows."""
    from mmcompact.checkpoint import atomic_file
    rows = summary_rows(study, measured, notes)
    with atomic_file(os.path.join(study.work_dir, 'measured.json'), 'w') as f:
        json.dump(dict(teacher=teacher, rows=rows,
                       runs=[dict(budget=k[0], name=k[1], seed=k[2], macs=notes[k[0], k[1]]['macs'], top1=v)
                             for k, v in sorted(measured.items())]), f, indent=1)
    plot(os.path.join(study.work_dir, 'study.png'), rows, teacher, study.family)
    return rows


def stability(study: Study, result: dict) -> list:
    """The structures the other search seeds choose at every budget, beside the first seed's."""
    from mmcompact.structure import choose
    lines = []
    for seed in study.args.search_seeds[1:]:
        other = study.search(seed)
        for budget in study.args.budgets:
            a, b = choose(result, dict(macs=budget)), choose(other, dict(macs=budget))
            first = [result['labels'][i][c] for i, c in enumerate(a.choice)]
            second = [other['labels'][i][c] for i, c in enumerate(b.choice)]
            lines.append(f"- {budget / 1e6:g}M: seed {study.args.search_seeds[0]}: {', '.join(first)}; seed {seed}: "
                         f"{', '.join(second)} ({'same' if first == second else 'different'})")
    return lines


def write_results(study: Study, rows: list, notes: dict, teacher: dict, result: dict, stable: list,
                  minutes: float) -> list:
    """results.md: the table, the structures, their stability, the commands. Returns the table lines."""
    from mmcompact.checkpoint import atomic_file
    lines = ['| budget | method | deploy MACs | n | top-1 mean ± 95% CI | vs uniform | Welch p | per seed |',
             '|---|---|---|---|---|---|---|---|']
    for r in rows:
        lines.append(f"| {r['budget'] / 1e6:g}M | {r['method']} | {r['macs'] / 1e6:.2f}M | {r['n']} | "
                     f"{r['mean']:.2f} ± {r['ci']:.2f} | " + ('' if r['delta'] is None else f"{r['delta']:+.2f}")
                     + ' | ' + ('' if r['p'] is None else f"{r['p']:.3g}") + ' | '
                     + ', '.join(f'{v:.1f}' for v in r['values']) + ' |')
    structures = [f"- {b / 1e6:g}M {m} ({notes[b, m]['macs'] / 1e6:.2f}M MACs): {notes[b, m]['structure']}"
                  for (b, m) in sorted(notes) if m not in ('no-init', 'no-KD')]
    with atomic_file(os.path.join(study.work_dir, 'results.md'), 'w') as f:
        f.write('\n'.join([
            f'# Structure study ({study.args.epochs}-epoch students, seeds {study.args.seeds}, {minutes:.0f} min this '
            'invocation)', '',
            f"Teacher: {study.family['name']}, {teacher['macs'] / 1e6:.2f}M MACs, top-1 {teacher['top1']}. Search: "
            f"{result['search_seconds'] / 60:.1f} min, additivity Spearman {result['additivity']['spearman']:.2f}.",
            '', *lines, '', 'Structures (candidate, input>output channels per block; no-init and no-KD are the '
            'learned ones):', *structures, '', 'Stability across search seeds:', *(stable or ['- not run']), '',
            'Commands:', '', '```', *study.commands, '```', '']))
    return lines


def main(argv=None) -> int:
    args = parse_args(argv)
    start = time.time()
    import mmcompact  # noqa: F401
    study = Study(args, argv)
    try:
        teacher_top1 = data_and_teacher(study)
    except FileNotFoundError as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    result = study.search(args.search_seeds[0])
    teacher = dict(top1=teacher_top1, **result['costs']['teacher'])
    folders, notes = students(study, result)
    measured, failures = train_students(study, folders, notes, teacher)
    stable = stability(study, result)
    search_dir = os.path.join(study.work_dir, f'search_seed{args.search_seeds[0]}')
    study.tool('structure/plot_structure', [search_dir, '--measured', os.path.join(study.work_dir, 'measured.json'),
                                            '--out', study.work_dir])
    rows = write_measured(study, measured, notes, teacher)
    lines = write_results(study, rows, notes, teacher, result, stable, (time.time() - start) / 60)
    print('\n'.join(lines))
    print(f'wrote {study.work_dir}/results.md, measured.json, study.png in {(time.time() - start) / 60:.1f} min')
    for failure in failures:
        print(f'error: {failure}', file=sys.stderr)
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
