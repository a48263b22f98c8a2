"""Export a folded classifier or detector to ONNX, check it with onnxruntime, and time it against PyTorch.

    python tools/deployment/export_onnx.py CONFIG [CHECKPOINT] OUT.onnx [--shape 224 224] [--batch-sizes 1 16]
                                [--static-batch] [--iters 20] [--tolerance 1e-4] [--rtol 1e-4] [--force]

The model (re-param blocks and every conv+BN pair) is folded first; a folded model further than --tolerance
(max abs difference) from the training form is refused. The ONNX graph holds mode 'tensor' outputs (logits,
or a detector's raw per-level head outputs: decoding and NMS stay in mmdet). onnxruntime's outputs are
compared with PyTorch's at every batch size before anything is written; a gap above --rtol (of the largest
output) writes nothing. Then CPU latency: PyTorch eager vs onnxruntime, same input, same threads,
interleaved. Without CHECKPOINT the model keeps its random initialisation (for a speed check).
"""
import argparse
import os
import sys


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('paths', nargs='+', metavar='[CHECKPOINT] OUT.onnx')
    parser.add_argument('--shape', type=int, nargs=2, default=[224, 224], metavar=('H', 'W'))
    parser.add_argument('--batch-sizes', type=int, nargs='+', default=[1, 16])
    parser.add_argument('--static-batch', action='store_true',
                        help='fix the batch size to the first of --batch-sizes (default: dynamic)')
    parser.add_argument('--iters', type=int, default=20, help='timed iterations (median reported)')
    parser.add_argument('--tolerance', type=float, default=1e-4,
                        help='largest allowed max abs difference between the folded and the training form')
    parser.add_argument('--rtol', type=float, default=1e-4,
                        help='largest allowed |onnxruntime - PyTorch|, relative to the largest output')
    parser.add_argument('--force', action='store_true', help='overwrite OUT.onnx')
    args = parser.parse_args(argv)
    if len(args.paths) > 2:
        parser.error('expected CONFIG [CHECKPOINT] OUT.onnx')
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    *checkpoint, out = args.paths
    checkpoint = checkpoint[0] if checkpoint else None
    if not out.endswith('.onnx'):
        print(f'error: the output {out!r} should end in .onnx (the ONNX file to write)', file=sys.stderr)
        return 1
    if os.path.exists(out) and not args.force:
        print(f'error: {out} exists: pass --force to overwrite it', file=sys.stderr)
        return 1
    import torch

    import mmcompact  # noqa: F401
    from mmcompact.analysis import format_table, time_interleaved
    from mmcompact.checkpoint import CheckpointLoadError
    from mmcompact.deploy import FoldMismatchError, OnnxMismatchError, export_checked, fold_checked, onnx_runner
    from mmcompact.utils import build_model, load_config, random_inputs
    sizes = args.batch_sizes[:1] if args.static_batch else args.batch_sizes
    try:
        model = build_model(load_config(args.config), checkpoint)
        model.eval()
        session_threads = torch.get_num_threads()
        example = random_inputs((args.batch_sizes[0], 3, *args.shape))
        folded, fold_check = fold_checked(model, example, args.tolerance, '--tolerance', fuse_conv_bn=True)
        print(f"folded: max |train form - folded| = {fold_check['max_abs_diff']:.2e} "
              f'(tolerance {args.tolerance:g})')
        session, check = export_checked(folded, example, out, [random_inputs((bs, 3, *args.shape), seed=bs)
                                                               for bs in sizes],
                                        rtol=args.rtol, dynamic_batch=not args.static_batch,
                                        threads=session_threads, overwrite=args.force)
    except (FileNotFoundError, FileExistsError, KeyError, ImportError, CheckpointLoadError,
            FoldMismatchError, OnnxMismatchError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    print(f'wrote {out} ({os.path.getsize(out) / 1e6:.1f} MB)')
    for name, gap in check.items():
        print(f'onnxruntime vs PyTorch, {name}: max abs diff {gap["abs"]:.2e} ({gap["rel"]:.1e} of the largest '
              'output)')

    run = onnx_runner(session)
    rows = [['batch', 'PyTorch eager (folded) ms', 'onnxruntime ms', 'onnxruntime speed-up']]
    for bs in sizes:
        x = random_inputs((bs, 3, *args.shape))
        with torch.no_grad():
            times = time_interleaved({'torch': lambda: folded(x), 'ort': lambda: run(x)}, 3, args.iters)
        rows.append([str(bs), f"{times['torch']['ms']:.1f}", f"{times['ort']['ms']:.1f}",
                     f"{times['torch']['ms'] / times['ort']['ms']:.2f}x"])
    print(f'CPU latency, {session_threads} threads, input {args.shape[0]}x{args.shape[1]}, median of '
          f'{args.iters} interleaved runs:')
    print(format_table(rows, total_row=False))
    return 0


if __name__ == '__main__':
    sys.exit(main())
