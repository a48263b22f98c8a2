"""mmcompact's main job on an embedded default: build a GhostNetV3 detector from a config, fold it,
verify the folded model (raw outputs, detections, strict load into the deploy config) and print its
params/FLOPs table, training form vs deploy form.

    python tools/demo.py [--config configs/demo/retinanet_ghostnetv3-0.5x_fpn_320.py] [--shape 320 320]
                         [--work-dir work_dirs/demo]
"""
import argparse
import os
import sys
import time

DEFAULT_CONFIG = os.path.join(os.path.dirname(__file__), '..', 'configs', 'demo',
                              'retinanet_ghostnetv3-0.5x_fpn_320.py')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--config', default=os.path.normpath(DEFAULT_CONFIG))
    parser.add_argument('--shape', type=int, nargs=2, default=[320, 320], metavar=('H', 'W'))
    parser.add_argument('--work-dir', default='work_dirs/demo')
    parser.add_argument('--tolerance', type=float, default=1e-4)
    return parser.parse_args(argv)


def step(message: str) -> None:
    print(f'\n== {message}', flush=True)


def main(argv=None) -> int:
    args = parse_args(argv)
    start = time.time()
    import torch

    import mmcompact  # noqa: F401
    from mmcompact.analysis import complexity_table, format_table, train_and_deploy_complexity
    from mmcompact.apis import (build_model, deploy_config, detection_inputs, fold_and_check,
                                load_config, match_detections)
    from mmcompact.checkpoint import save_atomic
    from mmcompact.reparam import foldable_modules, max_abs_diff

    torch.manual_seed(0)
    step(f'1. build the detector of {args.config}')
    cfg = load_config(args.config)
    model = build_model(cfg)
    backbone = model.backbone
    print(f'{type(model).__name__} with {type(backbone).__name__} {backbone.widen_factor}x backbone '
          f'(out_indices {backbone.out_indices}, channels {backbone.out_channels}), '
          f'{len(foldable_modules(model))} re-parameterizable modules')

    step('2. give BatchNorm realistic running statistics (3 training-mode passes on random images)')
    images, samples = detection_inputs(2, args.shape)
    model.train()
    with torch.no_grad():
        for i in range(3):
            model(model.data_preprocessor(dict(inputs=list(detection_inputs(2, args.shape, seed=i + 1)[0]),
                                               data_samples=None), True)['inputs'], mode='tensor')
    model.eval()
    batch = model.data_preprocessor(dict(inputs=list(images), data_samples=samples), False)
    with torch.no_grad():
        detections = model(batch['inputs'], batch['data_samples'], mode='predict')
    print(f'training form: {len(detections[0].pred_instances)} detections on image 0 '
          f'(random weights, score_thr {cfg.model.test_cfg.score_thr})')

    step('3. fold every re-parameterizable module and check the folded detector')
    folded, diff = fold_and_check(model, batch['inputs'])
    with torch.no_grad():
        folded_detections = folded(batch['inputs'], batch['data_samples'], mode='predict')
    print(f'raw head outputs, max abs difference: {diff:.3e} (tolerance {args.tolerance:g})')
    for i, (a, b) in enumerate(zip(detections, folded_detections)):
        m = match_detections(a, b)
        print(f"image {i}: {m['reference']} vs {m['candidate']} detections, {m['matched']} matched "
              f"(same label, IoU >= 0.99), max score difference {m['max_score_diff']:.2e}")
    dcfg, switched = deploy_config(cfg)
    deployed = build_model(dcfg).eval()
    deployed.load_state_dict(folded.state_dict(), strict=True)
    with torch.no_grad():
        load_diff = max_abs_diff(folded(batch['inputs']), deployed(batch['inputs']))
    out = save_atomic(dict(meta=dict(deploy=True), state_dict=folded.state_dict()),
                      os.path.join(args.work_dir, 'retinanet_ghostnetv3_deploy.pth'), overwrite=True)
    print(f'deploy checkpoint loads strictly into the config with deploy=True on {switched} '
          f'(max abs difference {load_diff:.1e}); written to {out}')
    if not diff <= args.tolerance or not load_diff <= args.tolerance:
        print('error: the folded detector does not match the training form', file=sys.stderr)
        return 1

    step(f'4. params and FLOPs at {args.shape[0]}x{args.shape[1]} (FLOPs = multiply-accumulates)')
    train, deploy = train_and_deploy_complexity(model, (1, 3, *args.shape))
    print(format_table(complexity_table(train, deploy)))
    print(f'\nbackbone deploy form: {deploy.part_params["backbone"] / train.part_params["backbone"]:.0%} '
          f'of the training-form params, {deploy.part_macs["backbone"] / train.part_macs["backbone"]:.0%} '
          f'of its MACs. Done in {time.time() - start:.0f} s.')
    return 0


if __name__ == '__main__':
    sys.exit(main())
