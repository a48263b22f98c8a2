"""Quantize a classifier or single-stage detector to static INT8 ONNX: metric, size and CPU latency, FP32 vs INT8.

    python tools/deployment/quantize.py CONFIG CHECKPOINT OUT_DIR [--calib-num 256]
        [--calibrate minmax|entropy|entropy-tails|percentile] [--per-channel] [--format qdq|qoperator] [--shape 32 32]
        [--eval-num N] [--sensitivity] [--no-eval] [--force] [--cfg-options k=v ...]

CHECKPOINT (training form or folded) is folded with the equivalence check and exported (OUT_DIR/fp32.onnx,
checked in onnxruntime), then quantized with onnxruntime's quantize_static (int8 weights and activations),
calibrated on --calib-num training images through the config's test pipeline and data preprocessor
(OUT_DIR/int8.onnx). Both are evaluated on the config's test set with the config's evaluator in the MMEngine
test loop: a detector's boxes are decoded from the ONNX head outputs by its own bbox_head, so --shape must be
the preprocessed test image size (e.g. 160 160 for the demo's detectors). --sensitivity adds the per-layer
report (OUT_DIR/sensitivity.md and .png): each layer's weight and input ranges and the output SQNR when only
that layer is quantized.
"""
import argparse
import json
import os
import sys

from mmengine.config import DictAction


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('out_dir', help='folder for fp32.onnx, int8.onnx, quantize.json (and the sensitivity report)')
    parser.add_argument('--calib-num', type=int, default=256, help='calibration images (default 256)')
    parser.add_argument('--calibrate', choices=['minmax', 'entropy', 'entropy-tails', 'percentile'],
                        default='minmax', help='entropy-tails: Entropy, but a range it clips to under 1/10 of the '
                        'observed one keeps the observed range (mmcompact.deploy.TAIL_FLOOR)')
    parser.add_argument('--per-channel', action='store_true', help='per-output-channel weight scales')
    parser.add_argument('--format', choices=['qdq', 'qoperator'], default='qdq')
    parser.add_argument('--shape', type=int, nargs=2, default=[224, 224], metavar=('H', 'W'),
                        help='input size of the export and the latency runs (default 224 224)')
    parser.add_argument('--eval-num', type=int, help='evaluate on the first N test images (default: all)')
    parser.add_argument('--sensitivity', action='store_true', help='the per-layer sensitivity report')
    parser.add_argument('--no-eval', action='store_true', help='write the INT8 model only')
    parser.add_argument('--iters', type=int, default=20, help='timed iterations per latency figure')
    parser.add_argument('--force', action='store_true', help='replace the files of an earlier run in OUT_DIR')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config keys')
    args = parser.parse_args(argv)
    if args.calib_num < 1 or min(args.shape) < 1 or (args.eval_num is not None and args.eval_num < 1):
        parser.error('--calib-num, --eval-num and --shape must be >= 1')
    return args


def metric_key(metrics: dict):
    """The metric both models are scored by (None without evaluation, or when neither model scored); a model
    with no metric (CocoMetric reports nothing when no box passes the score threshold) scores 0, said so."""
    key = next(iter(metrics['FP32'] or metrics['INT8']), None) if metrics else None
    for name in [n for n in metrics if key is not None and key not in metrics[n]]:
        print(f'{name}: no detection above the score threshold: {key} 0')
        metrics[name] = {key: 0.0}
    return key


def main(argv=None) -> int:
    args = parse_args(argv)
    fp32, int8 = os.path.join(args.out_dir, 'fp32.onnx'), os.path.join(args.out_dir, 'int8.onnx')
    if not args.force and any(os.path.exists(p) for p in (fp32, int8)):
        print(f'error: {args.out_dir} holds fp32.onnx / int8.onnx of an earlier run: pass --force to replace '
              'them, or choose another OUT_DIR', file=sys.stderr)
        return 1
    import mmcompact  # noqa: F401
    from mmcompact.analysis import format_table
    from mmcompact.checkpoint import CheckpointLoadError
    from mmcompact.deploy import (FoldMismatchError, OnnxMismatchError, QuantizationError, check_evaluable,
                                  evaluate_onnx, fp32_onnx_of, is_classifier, layer_sensitivity, onnx_latency,
                                  preprocessed_batches, quantize_onnx)
    from mmcompact.utils import load_config
    os.makedirs(args.out_dir, exist_ok=True)
    try:
        cfg = load_config(args.config, args.cfg_options)
        if not args.no_eval:
            check_evaluable(cfg)
        check = fp32_onnx_of(cfg, args.checkpoint, fp32, (3, *args.shape))
        batches = preprocessed_batches(cfg, args.calib_num, pad_to=None if is_classifier(cfg) else args.shape)
        quantize_onnx(fp32, int8, batches, args.calibrate, args.per_channel, args.format)
        metrics = {} if args.no_eval else {
            name: evaluate_onnx(cfg, path, os.path.join(args.out_dir, f'eval_{name}'), max_images=args.eval_num)
            for name, path in (('FP32', fp32), ('INT8', int8))}
    except (FileNotFoundError, KeyError, ImportError, CheckpointLoadError, FoldMismatchError, OnnxMismatchError,
            QuantizationError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    print(f"folded: max |train form - folded| = {check['max_abs_diff']:.2e}; calibrated on {args.calib_num} "
          f'images ({args.calibrate}, {"per-channel" if args.per_channel else "per-tensor"} weights, {args.format})')
    latency = onnx_latency({'FP32': fp32, 'INT8': int8}, (3, *args.shape), (1, 16), args.iters)
    key = metric_key(metrics)
    if metrics and key is None:
        print('error: neither the FP32 nor the INT8 model detects anything above the score threshold on the '
              'validation set: check the checkpoint and the config (--cfg-options)', file=sys.stderr)
        return 1
    digits = 3 if key and 'mAP' in key else 2  # mAP in [0, 1], top-1 in percent
    rows = [['model', key or 'metric', 'drop', 'size MB', 'latency bs1 ms', 'latency bs16 ms']]
    for name, path in (('FP32', fp32), ('INT8', int8)):
        value = metrics[name][key] if metrics else None
        drop = '' if not metrics or name == 'FP32' else f"{metrics['FP32'][key] - value:+.{digits}f}"
        rows.append([name, '' if value is None else f'{value:.{digits}f}', drop, f'{os.path.getsize(path) / 1e6:.2f}',
                     f'{latency[name][1]:.2f}', f'{latency[name][16]:.2f}'])
    print(format_table(rows, total_row=False))
    summary = dict(config=args.config, checkpoint=args.checkpoint, calibrate=args.calibrate, calib_num=args.calib_num,
                   per_channel=args.per_channel, format=args.format, metrics=metrics,
                   size_mb={n: os.path.getsize(p) / 1e6 for n, p in (('FP32', fp32), ('INT8', int8))},
                   latency_ms={n: {str(b): t for b, t in v.items()} for n, v in latency.items()})
    if args.sensitivity:
        rows = layer_sensitivity(fp32, batches, args.calibrate, args.per_channel, args.format)
        summary['sensitivity'] = rows
        write_sensitivity(rows, args.out_dir)
        print(f'per-layer sensitivity: {args.out_dir}/sensitivity.md, sensitivity.png (most sensitive: '
              f"{min(rows, key=lambda r: r['sqnr_db'])['node']})")
    with open(os.path.join(args.out_dir, 'quantize.json'), 'w') as f:
        json.dump(summary, f, indent=1)
    print(f'wrote {fp32}, {int8}, {args.out_dir}/quantize.json')
    return 0


def write_sensitivity(rows: list, out_dir: str) -> None:
    """sensitivity.md (the table) and sensitivity.png (output SQNR per layer, weight ranges beside it)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    from mmcompact.analysis import format_table
    table = [['layer', 'op', 'weight min', 'weight max', 'input min', 'input max', 'output SQNR dB']]
    table += [[r['node'], r['op'], f"{r['weight_min']:.3g}", f"{r['weight_max']:.3g}", f"{r['act_min']:.3g}",
               f"{r['act_max']:.3g}", f"{r['sqnr_db']:.1f}"] for r in rows]
    with open(os.path.join(out_dir, 'sensitivity.md'), 'w') as f:
        f.write('Output SQNR when only this layer is quantized (lower: more sensitive)\n\n```\n'
                + format_table(table, total_row=False) + '\n```\n')
    fig, (ax, bx) = plt.subplots(2, 1, figsize=(max(6, len(rows) * 0.3), 6), sharex=True)
    x = range(len(rows))
    ax.bar(x, [r['sqnr_db'] for r in rows], color='#3182bd')
    ax.set_ylabel('output SQNR (dB)\nthis layer INT8 only')
    bx.bar(x, [max(abs(r['weight_min']), abs(r['weight_max'])) for r in rows], color='#e6550d')
    bx.set_ylabel('max |weight|')
    bx.set_xticks(list(x), [r['node'][-18:] for r in rows], rotation=90, fontsize=6)
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, 'sensitivity.png'), dpi=120)
    plt.close(fig)


if __name__ == '__main__':
    sys.exit(main())
