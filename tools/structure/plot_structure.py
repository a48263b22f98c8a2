"""Plots of a finished structure search: predicted Pareto front (with measured points), per-block candidate
score heatmap, chosen structure per budget, and the additivity check.

    python tools/structure/plot_structure.py SEARCH_DIR [--measured study.json] [--budgets 30M 50M] [--out DIR]

--measured: a JSON list of {"name", "macs", "top1"} (projects/studies/structure_study.py writes one) drawn on the front.
Writes pareto.png, heatmap.png, structures.png and additivity.png.
"""
import argparse
import json
import os
import sys


def parse_args(argv=None):
    from mmcompact.analysis import parse_amount
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('search_dir')
    parser.add_argument('--measured', help='JSON list of measured students')
    parser.add_argument('--budgets', type=parse_amount, nargs='+',
                        help='MACs budgets of the structures plot (default: 6 between cheapest and teacher)')
    parser.add_argument('--out', help='default: SEARCH_DIR')
    return parser.parse_args(argv)


def plot_front(result: dict, front: list, measured_path, out: str, plt) -> None:
    """pareto.png: the predicted front (summed block error vs deploy MACs), measured runs on a second axis."""
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    ax.step([m / 1e6 for m, _, _ in front], [s for _, s, _ in front], where='post', label='predicted front')
    ax.set_xlabel('deploy MACs (M)')
    ax.set_ylabel('summed block error (normalised MSE)')
    ax.axvline(result['costs']['teacher']['macs'] / 1e6, color='gray', linestyle=':', label='teacher')
    if measured_path:
        with open(measured_path) as f:
            measured = json.load(f)
        if isinstance(measured, dict):  # projects/studies/structure_study.py's measured.json: the runs are one key
            measured = measured['runs']
        twin = ax.twinx()
        for name in sorted({m['name'] for m in measured}):
            points = [m for m in measured if m['name'] == name]
            twin.scatter([p['macs'] / 1e6 for p in points], [p['top1'] for p in points], label=name, s=18)
        twin.set_ylabel('measured top-1 (%) after fine-tuning')
        twin.legend(loc='center right', fontsize=8)
    ax.legend(loc='upper right', fontsize=8)
    ax.set_title('Structure search: predicted Pareto front')
    fig.tight_layout()
    fig.savefig(os.path.join(out, 'pareto.png'), dpi=120)


def plot_heatmap(result: dict, paths: list, out: str, plt, np) -> None:
    """heatmap.png: every candidate's held-out block error (log scale), with its label and MACs."""
    width = max(len(labels) for labels in result['labels'])
    grid = np.full((len(paths), width), np.nan)
    for b, scores in enumerate(result['scores']):
        grid[b, :len(scores)] = scores
    fig, ax = plt.subplots(figsize=(1.2 * width + 2, 0.7 * len(paths) + 1.8))
    shown = np.log10(np.maximum(grid, 1e-4))
    image = ax.imshow(shown, cmap='viridis_r', aspect='auto')
    middle = (np.nanmin(shown) + np.nanmax(shown)) / 2
    for b, labels in enumerate(result['labels']):
        for c, label in enumerate(labels):
            macs = result['costs']['table'][b][c]['macs'] / 1e6
            ax.text(c, b, f'{label}\n{grid[b, c]:.3f}\n{macs:.1f}M', ha='center', va='center', fontsize=6,
                    color='white' if shown[b, c] > middle else 'black')
    ax.set_yticks(range(len(paths)), paths)
    ax.set_xticks([])
    fig.colorbar(image, label='log10 held-out normalised MSE')
    ax.set_title('Block-wise distillation error per candidate (label, error, MACs)')
    fig.tight_layout()
    fig.savefig(os.path.join(out, 'heatmap.png'), dpi=120)


def plot_structures(result: dict, paths: list, budgets: list, out: str, plt) -> None:
    """structures.png: the chosen candidate per block at each budget."""
    from mmcompact.structure import choose
    rows = []
    for budget in budgets:
        choice = choose(result, dict(macs=budget)).choice
        rows.append((budget, [result['labels'][b][c] for b, c in enumerate(choice)]))
    fig, ax = plt.subplots(figsize=(1.6 * len(paths) + 2, 0.5 * len(rows) + 1.5))
    ax.set_xlim(-0.5, len(paths) - 0.5)
    ax.set_ylim(-0.5, len(rows) - 0.5)
    for r, (budget, labels) in enumerate(rows):
        for b, label in enumerate(labels):
            ax.text(b, r, label, ha='center', va='center', fontsize=8,
                    bbox=dict(boxstyle='round', facecolor='#dde8f5' if label != 'keep' else '#f5e3c8'))
    ax.set_xticks(range(len(paths)), paths)
    ax.set_yticks(range(len(rows)), [f'{b / 1e6:.1f}M' for b, _ in rows])
    ax.set_ylabel('MACs budget')
    ax.set_title('Chosen structure per budget')
    fig.tight_layout()
    fig.savefig(os.path.join(out, 'structures.png'), dpi=120)


def main(argv=None) -> int:
    args = parse_args(argv)
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    import numpy as np

    import mmcompact  # noqa: F401
    from mmcompact.structure import load_search, predicted_front
    try:
        result = load_search(args.search_dir)
    except FileNotFoundError as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    out = args.out or args.search_dir
    os.makedirs(out, exist_ok=True)
    paths = [b['path'] for b in result['blocks']]
    front = predicted_front(result)
    plot_front(result, front, args.measured, out, plt)
    plot_heatmap(result, paths, out, plt, np)
    budgets = args.budgets or list(np.linspace(front[0][0], result['costs']['teacher']['macs'], 7)[1:])
    plot_structures(result, paths, budgets, out, plt)

    check = result['additivity']
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.scatter(check['predicted'], check['measured'])
    ax.set_xlabel('summed block scores (predicted)')
    ax.set_ylabel('whole-network error (measured)')
    ax.set_title(f"Additivity: Spearman {check['spearman']:.2f} ({len(check['choices'])} configs)")
    fig.tight_layout()
    fig.savefig(os.path.join(out, 'additivity.png'), dpi=120)
    for name in ('pareto', 'heatmap', 'structures', 'additivity'):
        print(f'wrote {os.path.join(out, name)}.png')
    return 0


if __name__ == '__main__':
    sys.exit(main())
