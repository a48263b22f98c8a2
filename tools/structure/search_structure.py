"""Block-wise distillation structure search: train every candidate block against the teacher, score them on
held-out data, count their exact deploy costs, and check that block scores predict whole-network quality.

    python tools/structure/search_structure.py CONFIG [--work-dir DIR] [--resume] [--cfg-options k=v ...]
    torchrun --nproc_per_node N tools/structure/search_structure.py CONFIG --launcher pytorch   # CPU (gloo)

CONFIG is the teacher's model/data config with a ``structure_search`` section (configs/structure/). Writes
search.json, search_state.pth and search_config.py into the work dir; then run tools/structure/export_structure.py.
"""
import argparse
import os
import sys
import time


def parse_args(argv=None):
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('--work-dir', help='default: work_dirs/<config name>')
    parser.add_argument('--resume', action='store_true', help='continue from the work dir\'s search_state.pth')
    parser.add_argument('--launcher', choices=['none', 'pytorch'], default='none')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={})
    return parser.parse_args(argv)


def print_tables(result: dict) -> None:
    from mmcompact.analysis import format_table
    width = max(len(labels) for labels in result['labels'])
    rows = [['block'] + [f'#{c}' for c in range(width)]]
    for block, labels, scores, costs in zip(result['blocks'], result['labels'], result['scores'],
                                            result['costs']['table']):
        rows.append([block['path']] + [f'{label}: {score:.3f} @ {cost["macs"] / 1e6:.2f}M'
                                       for label, score, cost in zip(labels, scores, costs)]
                    + [''] * (width - len(labels)))
    print('held-out normalised MSE @ deploy MACs, per block and candidate:')
    print(format_table(rows, total_row=False))
    costs = result['costs']
    print(f"teacher: {costs['teacher']['macs'] / 1e6:.2f}M MACs, {costs['teacher']['params'] / 1e6:.3f}M "
          f"params; fixed parts: {costs['fixed']['macs'] / 1e6:.2f}M MACs, "
          f"{costs['fixed']['params'] / 1e6:.3f}M params")
    check = result['additivity']
    print(f"additivity: Spearman {check['spearman']:.3f} between summed block scores and whole-network "
          f"error over {len(check['choices'])} random configurations; search took "
          f"{result['search_seconds'] / 60:.1f} min")


def main(argv=None) -> int:
    args = parse_args(argv)
    from mmengine.logging import MMLogger
    from mmengine.registry import init_default_scope
    from tqdm import tqdm

    import mmcompact  # noqa: F401
    from mmcompact.cli import resolve_work_dir, setup_launcher, shutdown_distributed
    from mmcompact.structure import run_search
    from mmcompact.utils import load_config
    try:
        cfg = load_config(args.config, args.cfg_options)
        work_dir = os.path.abspath(resolve_work_dir(cfg, args.config, args.work_dir))
        setup_launcher(cfg, args.launcher)
        os.makedirs(work_dir, exist_ok=True)
        MMLogger.get_instance(f'mmcompact_search_{time.time_ns()}', log_file=os.path.join(work_dir, 'search.log'))
        init_default_scope(cfg.get('default_scope', 'mmengine'))
        bar = {}

        def progress_factory(total):
            from mmengine.dist import is_main_process
            bar['bar'] = tqdm(total=total, desc='block-wise distillation', unit='it', disable=not is_main_process())
            return bar['bar'].update

        result = run_search(cfg, work_dir, resume=args.resume, progress_factory=progress_factory)
        if 'bar' in bar:
            bar['bar'].close()
    except (FileNotFoundError, FileExistsError, KeyError, ValueError, TypeError) as err:
        shutdown_distributed(wait=False)
        print(f'error: {err}', file=sys.stderr)
        return 1
    from mmengine.dist import is_main_process
    main_process = is_main_process()
    shutdown_distributed()
    if not main_process:
        return 0
    print_tables(result)
    print(f'wrote {work_dir}/search.json; next: python tools/structure/export_structure.py {work_dir} --macs <budget>')
    return 0


if __name__ == '__main__':
    sys.exit(main())
