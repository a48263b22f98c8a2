"""Export a folded classifier or detector to ONNX, check it with onnxruntime, and time it against PyTorch.

    python tools/export_onnx.py CONFIG [CHECKPOINT] OUT.onnx [--shape 224 224] [--batch-sizes 1 16]
                                [--static-batch] [--iters 20] [--rtol 1e-4] [--force]

The model (re-param blocks and every conv+BN pair) is folded first, with its equivalence checked; the ONNX
graph holds mode 'tensor' outputs (logits, or a detector's raw per-level head outputs: decoding and NMS stay
in mmdet). onnxruntime's outputs are compared with PyTorch's at every batch size; a gap above --rtol (of the
largest output) fails. Then CPU latency: PyTorch eager vs onnxruntime, same input, same threads, interleaved.
Without CHECKPOINT the model keeps its random initialisation (for a speed check).
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
    from mmcompact.apis import build_model, fold_and_check, load_config, random_inputs
    from mmcompact.checkpoint import UnsafeCheckpointError
    from mmcompact.deploy import compare_with_pytorch, export_onnx, onnx_runner, onnx_session
    try:
        model = build_model(load_config(args.config), checkpoint).eval()
        session_threads = torch.get_num_threads()
        example = random_inputs((args.batch_sizes[0], 3, *args.shape))
        folded, fold_diff = fold_and_check(model, example)
        print(f'folded: max |train form - folded| = {fold_diff:.2e}')
        export_onnx(folded, example, out, dynamic_batch=not args.static_batch)
        session = onnx_session(out, threads=session_threads)
        sizes = args.batch_sizes[:1] if args.static_batch else args.batch_sizes
        check = compare_with_pytorch(session, folded, [random_inputs((bs, 3, *args.shape), seed=bs)
                                                       for bs in sizes])
    except (FileNotFoundError, KeyError, ImportError, UnsafeCheckpointError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    print(f'wrote {out} ({os.path.getsize(out) / 1e6:.1f} MB)')
    for name, gap in check.items():
        print(f'onnxruntime vs PyTorch, {name}: max abs diff {gap["abs"]:.2e} ({gap["rel"]:.1e} of the largest '
              'output)')
    if max(gap['rel'] for gap in check.values()) > args.rtol:
        print(f'error: onnxruntime differs from PyTorch by more than --rtol {args.rtol}', file=sys.stderr)
        return 1

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
