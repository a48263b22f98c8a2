"""Pick the structure for a budget from a finished search and export it as a normal config + checkpoint.

    python tools/structure/export_structure.py SEARCH_DIR --macs 40M [--params 2.5M] [--out DIR] [--force]
                                     [--predictor CALIBRATION/predictor.json]

Writes student.py (the teacher config with a StructuredBackbone), student_init.pth (block-distilled
weights) and, for classifiers, student_kd.py (end-to-end fine-tuning with KD from the teacher); then train
with tools/train.py and fold with tools/deployment/fold.py. Budgets are whole-network deploy-form costs at the search's
input size; suffixes K/M/G.
"""
import argparse
import os
import sys


def parse_args(argv=None):
    from mmcompact.analysis import parse_amount
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('search_dir')
    parser.add_argument('--macs', type=parse_amount, help='MACs budget (deploy form), e.g. 40M')
    parser.add_argument('--params', type=parse_amount, help='parameter budget (deploy form), e.g. 2.5M')
    parser.add_argument('--out', help='output folder (default: SEARCH_DIR/export_<budget>)')
    parser.add_argument('--force', action='store_true', help='replace existing files in --out')
    parser.add_argument('--predictor', help='select by the predicted accuracy of a calibrated predictor '
                                            '(tools/structure/calibrate_predictor.py) instead of the summed block '
                                            'scores')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    import mmcompact  # noqa: F401
    from mmcompact.analysis import format_table
    from mmcompact.structure import export_structure
    budgets = {k: v for k, v in (('macs', args.macs), ('params', args.params)) if v is not None}
    tag = '_'.join(f'{k}{v / 1e6:g}M' for k, v in budgets.items())
    out = args.out or os.path.join(args.search_dir, f'export_{tag}')
    try:
        report = export_structure(args.search_dir, budgets, out, force=args.force, predictor=args.predictor)
    except (FileNotFoundError, FileExistsError, KeyError, ValueError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    rows = [['block', 'chosen']] + [[b, label] for b, label in zip(report['blocks'], report['labels'])]
    print(format_table(rows, total_row=False))
    for kind, budget in budgets.items():
        exact = report['exact'][kind]
        print(f'{kind}: {exact:,} exact (predicted {report["predicted"][kind]:,.0f}), budget {budget:,.0f}, '
              f'slack {budget - exact:,.0f} ({(budget - exact) / budget:.1%})')
    if args.predictor:
        print(f"predicted accuracy {report['predicted_score']:.2f} ({args.predictor})")
    for path in report['files']:
        print(f'wrote {path}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
