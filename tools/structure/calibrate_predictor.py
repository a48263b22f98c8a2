"""Calibrate the accuracy predictor of a finished structure search (DONNA-style): fine-tune structures
sampled across the cost range, fit accuracy ~ per-block weighted block scores, report its rank agreement on
held-out structures, and save it for tools/structure/export_structure.py --predictor.

    python tools/structure/calibrate_predictor.py SEARCH_DIR [--num 16] [--held-out 4] [--epochs 3] [--seed 0]
                                        [--metric accuracy/top1] [--work-dir SEARCH_DIR/calibration]
                                        [--cfg-options KEY=VALUE ...]

Each structure is exported with its block-distilled initialisation (student_kd.py: fine-tuning with KD
from the teacher, the study's recipe; student.py for detectors) and trained by tools/train.py for
--epochs; a finished run is reused and an interrupted one resumed, so re-running continues. Writes
predictor.json (the predictor fitted on all structures, plus the held-out agreement of the one fitted
without them), measured.json and predictor.png (predicted vs measured).
"""
import argparse
import json
import os
import sys
import time

from mmengine.config import DictAction

TOOLS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('search_dir')
    parser.add_argument('--num', type=int, default=16, help='structures to fine-tune')
    parser.add_argument('--held-out', type=int, default=4, help='of which held out to measure rank agreement')
    parser.add_argument('--epochs', type=int, default=3, help='fine-tuning epochs per structure')
    parser.add_argument('--seed', type=int, default=0, help='sampling, split and training seed')
    parser.add_argument('--metric', default='accuracy/top1', help='the logged metric to predict')
    parser.add_argument('--alpha', type=float, default=1e-3, help='ridge penalty (relative)')
    parser.add_argument('--work-dir', help='default: SEARCH_DIR/calibration')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={},
                        help='passed to every fine-tuning run (e.g. data roots)')
    args = parser.parse_args(argv)
    if args.num < 4 or args.epochs < 1 or not 2 <= args.held_out <= args.num - 2 or args.alpha < 0:
        parser.error('need --num >= 4, 2 <= --held-out <= --num - 2, --epochs >= 1 and --alpha >= 0')
    return args


def plot(path: str, measured: list, predicted_held_out: dict, agreement: dict, metric: str) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5.5, 5))
    fit = [m for m in measured if m['index'] not in predicted_held_out]
    ax.scatter([m['predicted_all'] for m in fit], [m['measured'] for m in fit], label='fitted on', color='#9ecae1')
    held = [m for m in measured if m['index'] in predicted_held_out]
    ax.scatter([predicted_held_out[m['index']] for m in held], [m['measured'] for m in held], color='#d62728',
               label=f"held out: Kendall {agreement['kendall_tau']:.2f}, Spearman {agreement['spearman']:.2f}")
    values = [m['measured'] for m in measured] + [m['predicted_all'] for m in measured]
    ax.plot([min(values), max(values)], [min(values), max(values)], '--', color='gray', lw=1)
    ax.set_xlabel(f'predicted {metric}')
    ax.set_ylabel(f'measured {metric}')
    ax.set_title('Calibrated predictor: predicted vs measured')
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def fine_tune(args, result: dict, choices: list, costs: list, work_dir: str):
    """Export and fine-tune every sampled structure (each run reused when finished, resumed when
    interrupted); their measured metric and MACs, or None when a fine-tuning failed (printed)."""
    from mmcompact.cli import epoch_overrides, finished_metric, train_or_reuse
    from mmcompact.structure import export_structure
    options = {**epoch_overrides(args.epochs), 'randomness.seed': args.seed, **args.cfg_options}
    measured = []
    for index, choice in enumerate(choices):
        out = os.path.join(work_dir, f'structure_{index:02d}')
        run_dir = os.path.join(out, 'train')
        if not os.path.isfile(os.path.join(out, 'student.py')):
            export_structure(args.search_dir, {}, out, force=True, choice=choice)
        config = os.path.join(out, 'student_kd.py')
        config = config if os.path.isfile(config) else os.path.join(out, 'student.py')
        if finished_metric(run_dir, args.metric) is None:
            print(f'[{index + 1}/{len(choices)}] fine-tune structure {choice} -> {run_dir}', flush=True)
        try:
            score = train_or_reuse(os.path.join(TOOLS, 'train.py'), config, run_dir, args.metric, options,
                                   log=os.path.join(out, 'train.log'))
        except RuntimeError as err:
            print(f'error: fine-tuning structure {index}: {err}', file=sys.stderr)
            return None
        macs = result['costs']['fixed']['macs'] + sum(costs[b][c] for b, c in enumerate(choice))
        measured.append(dict(index=index, choice=choice, macs=macs, measured=float(score)))
    return measured


def print_summary(args, result: dict, measured: list, held: dict, agreement: dict, split: dict, work_dir: str,
                  minutes: float) -> None:
    """The per-structure table, the held-out agreement, the cost and how to use the predictor."""
    from mmcompact.analysis import format_table
    rows = [['#', 'structure', 'MACs', f'measured {args.metric}', 'predicted', 'held out']]
    for m in measured:
        rows.append([str(m['index']), ' '.join(result['labels'][b][c] for b, c in enumerate(m['choice'])),
                     f"{m['macs'] / 1e6:.2f}M", f"{m['measured']:.2f}",
                     f"{held.get(m['index'], m['predicted_all']):.2f}", 'yes' if m['index'] in held else ''])
    print(format_table(rows, total_row=False))
    print(f"held-out rank agreement ({args.held_out} structures, predictor fitted on the other "
          f"{len(split['fit'])}): Kendall tau {agreement['kendall_tau']:.3f}, Spearman {agreement['spearman']:.3f}")
    print(f'cost: {len(measured)} fine-tunings of {args.epochs} epoch(s), {minutes:.1f} min in this call '
          '(runs reused from earlier calls cost nothing here)')
    print(f'wrote {work_dir}/predictor.json, measured.json, predictor.png; select with: python '
          f'tools/structure/export_structure.py {args.search_dir} --macs <budget> '
          f'--predictor {work_dir}/predictor.json')


def main(argv=None) -> int:
    args = parse_args(argv)
    start = time.time()
    import mmcompact  # noqa: F401
    from mmcompact.checkpoint import atomic_file
    from mmcompact.structure import fit_predictor, held_out_split, load_search, rank_agreement, sample_structures

    try:
        result = load_search(args.search_dir)
    except FileNotFoundError as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    work_dir = os.path.abspath(args.work_dir or os.path.join(args.search_dir, 'calibration'))
    costs = [[entry['macs'] for entry in row] for row in result['costs']['table']]
    choices = sample_structures(costs, result['costs']['fixed']['macs'], args.num, args.seed,
                                links=result.get('links'))
    if len(choices) < args.num:
        print(f'error: the search space has only {len(choices)} distinct structures by cost; use --num '
              f'{len(choices)} or fewer', file=sys.stderr)
        return 1
    measured = fine_tune(args, result, choices, costs, work_dir)
    if measured is None:
        return 1
    split = held_out_split(len(choices), args.held_out, args.seed)
    fit_choices = [choices[i] for i in split['fit']]
    held_choices = [choices[i] for i in split['held_out']]
    partial = fit_predictor(result['scores'], fit_choices, [measured[i]['measured'] for i in split['fit']],
                            args.alpha)
    predicted = partial.predict(result['scores'], held_choices)
    agreement = rank_agreement(predicted, [measured[i]['measured'] for i in split['held_out']])
    final = fit_predictor(result['scores'], choices, [m['measured'] for m in measured], args.alpha)
    for m, value in zip(measured, final.predict(result['scores'], choices)):
        m['predicted_all'] = value
    minutes = (time.time() - start) / 60
    os.makedirs(work_dir, exist_ok=True)
    final.save(os.path.join(work_dir, 'predictor.json'), metric=args.metric, alpha=args.alpha,
               held_out=split['held_out'], held_out_agreement=agreement, num_structures=len(choices),
               epochs=args.epochs, search_dir=os.path.abspath(args.search_dir))
    with atomic_file(os.path.join(work_dir, 'measured.json'), 'w') as f:
        json.dump(measured, f, indent=1)
    plot(os.path.join(work_dir, 'predictor.png'), measured, dict(zip(split['held_out'], predicted)), agreement,
         args.metric)

    print_summary(args, result, measured, dict(zip(split['held_out'], predicted)), agreement, split, work_dir,
                  minutes)
    return 0


if __name__ == '__main__':
    sys.exit(main())
