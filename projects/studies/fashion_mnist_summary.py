"""One table and one plot of every Fashion-MNIST recipe study: each student family's variants (mean top-1 with
its 95% CI over seeds) at their deploy MACs, the teacher and the published figures.

    python projects/studies/fashion_mnist_summary.py [--studies FAMILY=JSON ...]
        [--plot results/fashion_mnist_summary.png] [--readme README.md]

Reads the results.json files ``recipe_study.py --task fmnist`` writes (committed as
results/fashion_mnist_recipe*.json; a default one that is not there is skipped, and said so), prints the markdown
table, draws the plot, and with --readme rewrites the README's table (from its ``<!-- fashion-mnist table``
line to ``<!-- end -->``), so the README shows exactly what the committed results hold.
"""
import argparse
import json
import math
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

STUDIES = ('ResNet-18-0.25x=results/fashion_mnist_recipe.json',
           'MobileNetV2-0.5x=results/fashion_mnist_recipe_mobilenetv2.json',
           'GhostNetV3-0.5x=results/fashion_mnist_recipe_ghostnetv3.json')
TEACHER = ('ResNet-18', os.path.join(ROOT, 'configs', 'fashion_mnist', 'resnet18_1xb128_fashion-mnist.py'))
MARKER, END = '<!-- fashion-mnist table', '<!-- end -->'


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--studies', nargs='+', metavar='FAMILY=JSON',
                        help=f'default: {" ".join(STUDIES)} (those that are there)')
    parser.add_argument('--plot', default='results/fashion_mnist_summary.png')
    parser.add_argument('--readme', help="rewrite this README's Fashion-MNIST table")
    args = parser.parse_args(argv)
    args.required = args.studies is not None  # named ones must be there; missing defaults are skipped
    pairs = [s.split('=', 1) for s in args.studies or STUDIES]
    if any(len(p) != 2 for p in pairs):
        parser.error('--studies takes FAMILY=JSON pairs, e.g. ResNet-18-0.25x=results/fashion_mnist_recipe.json')
    args.studies = [(family, os.path.join(ROOT, path)) for family, path in pairs]
    return args


def load_studies(studies: list, required: bool) -> tuple:
    """({'<family>, <variant>': {seed: top-1}}, {same: (deploy MACs, backbone MACs)}, teacher top-1 or None,
    the JSON files read). The studies' teachers must be one (the same score); a missing file is an error when
    ``required``, else skipped."""
    results, macs, teachers, read = {}, {}, set(), []
    for family, path in studies:
        if not os.path.isfile(path):
            if required:
                raise FileNotFoundError(f'--studies {family}={path}: no such file')
            continue
        with open(path) as f:
            study = json.load(f)
        if study.get('metric') != 'top-1 (%)':
            raise ValueError(f'{path} holds {study.get("metric")!r} scores, not a Fashion-MNIST top-1 study')
        read.append(os.path.relpath(path, ROOT))
        if study.get('teacher') is not None:
            teachers.add(round(study['teacher'], 2))
        for variant, v in study['variants'].items():
            results[f'{family}, {variant}'] = {int(s): score for s, score in v['seeds'].items()}
            macs[f'{family}, {variant}'] = (v['deploy_macs'], v['backbone_macs'])
    if len(teachers) > 1:
        raise ValueError(f'the studies were distilled from different teachers (top-1 {sorted(teachers)}): '
                         'summarise studies of one teacher')
    return results, macs, next(iter(teachers), None), read


def table(results: dict, macs: dict, teacher, teacher_macs: float, sources: list) -> str:
    """The markdown table, headed by the marker line that names its sources."""
    from mmcompact.analysis import mean_ci
    rows = [f'{MARKER}: {", ".join(sources)} (projects/studies/fashion_mnist_summary.py) -->',
            '| model (deploy network) | deploy MACs @32 px | top-1 (%), mean ± 95% CI | seeds |', '|---|---|---|---|']
    for name, seeds in results.items():
        mean, half = mean_ci(list(seeds.values()))
        score = f'{mean:.2f}' if math.isnan(half) else f'{mean:.2f} ± {half:.2f}'
        rows.append(f'| {name} | {macs[name][0] / 1e6:.2f}M | {score} | {len(seeds)} |')
    if teacher is not None:
        rows.append(f'| teacher: {TEACHER[0]} | {teacher_macs / 1e6:.2f}M | {teacher:.2f} | 1 |')
    from mmcompact.cli import FMNIST_PUBLISHED
    published = FMNIST_PUBLISHED['ResNet18']
    rows.append(f'| published ResNet18 (Fashion-MNIST benchmark list) | | {published} | |')
    return '\n'.join(rows + [END])


def rewrite_readme(path: str, block: str) -> None:
    """Replace the README's table (marker line to END) with ``block``; an error naming the marker if absent."""
    from mmcompact.checkpoint import atomic_file
    with open(path) as f:
        text = f.read()
    start, end = text.find(MARKER), text.find(END)
    if start < 0 or end < start:
        raise ValueError(f'{path} has no "{MARKER} ... -->" line followed by "{END}" to rewrite')
    with atomic_file(path, 'w') as f:
        f.write(text[:start] + block + text[end + len(END):])


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        results, macs, teacher, sources = load_studies(args.studies, args.required)
    except (OSError, ValueError, KeyError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    if not results:
        print('error: none of the studies is there: run projects/studies/recipe_study.py --task fmnist',
              file=sys.stderr)
        return 1
    from mmcompact.cli import deploy_macs, plot_vs_macs
    teacher_macs = deploy_macs({'teacher': TEACHER[1]}, {'teacher': (None, {})}, 32)['teacher'][0]
    block = table(results, macs, teacher, teacher_macs, sources)
    print(block)
    plot_vs_macs(os.path.join(ROOT, args.plot), results, teacher, macs, teacher_macs,
                              'Fashion-MNIST recipe studies: every student family and variant')
    print(f'wrote {args.plot}')
    if args.readme:
        rewrite_readme(args.readme, block)
        print(f'rewrote the Fashion-MNIST table of {args.readme}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
