"""Cost of distillation: training-step time of the student alone vs the distiller (student + teacher +
distillation losses), and the teacher's forward alone, on the same random batch in one process.

    python tools/analysis_tools/benchmark_distill.py CONFIG [--batch-size 8] [--shape 224 224] [--iters 10] [--device
    cpu]

The distillation overhead is the distiller's step minus (student step + teacher forward); goal: < 5%.
"""
import argparse
import sys


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='a distillation config (model.type mmcompact.Distiller)')
    parser.add_argument('--batch-size', type=int, default=8)
    parser.add_argument('--shape', type=int, nargs=2, default=[224, 224], metavar=('H', 'W'))
    parser.add_argument('--iters', type=int, default=10)
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument('--device', default=None, help='cpu or cuda (default: cuda when available)')
    return parser.parse_args(argv)


def synthetic_batch(distiller, batch_size, shape):
    """Random images and labels/boxes of the kind the student's loss expects."""
    import torch
    from mmengine.structures import InstanceData

    from mmcompact.utils import detection_inputs
    if hasattr(distiller.student, 'bbox_head') or hasattr(distiller.student, 'rpn_head'):
        images, samples = detection_inputs(batch_size, shape)
        for s in samples:
            s.gt_instances = InstanceData(bboxes=torch.tensor([[8., 8., shape[1] / 2, shape[0] / 2]]),
                                          labels=torch.tensor([0]))
    else:
        from mmpretrain.structures import DataSample
        images = torch.randint(0, 255, (batch_size, 3, *shape)).float()
        samples = [DataSample().set_gt_label(i % 2) for i in range(batch_size)]
    return distiller.data_preprocessor(dict(inputs=list(images), data_samples=samples), True)


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch

    import mmcompact  # noqa: F401
    from mmcompact.analysis import format_table, measure_distill_overhead
    from mmcompact.utils import build_model, load_config
    device = args.device or ('cuda' if torch.cuda.is_available() else 'cpu')
    try:
        cfg = load_config(args.config, {'model.teacher_checkpoint': None})
        distiller = build_model(cfg, device=device)
        if not hasattr(distiller, 'run_teacher'):
            raise ValueError(f'{args.config} is not a distillation config')
    except (FileNotFoundError, KeyError, ValueError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    data = synthetic_batch(distiller, args.batch_size, args.shape)
    results = measure_distill_overhead(distiller, data['inputs'], data['data_samples'], args.warmup,
                                       args.iters, device)
    print(f'device {device}, threads {torch.get_num_threads()}, batch {args.batch_size} x '
          f'{args.shape[0]}x{args.shape[1]}, median of {args.iters} interleaved runs')
    rows = [['', 'ms']] + [[name, f"{r['ms']:.1f}"] for name, r in results.items() if name != 'overhead']
    rows.append(['overhead beyond the teacher', f"{results['overhead']['ms']:.1f} "
                 f"({results['overhead']['fraction']:+.1%})"])
    print(format_table(rows))
    return 0


if __name__ == '__main__':
    sys.exit(main())
