"""Library functions behind the tools: build models from configs, deploy configs, checked folding."""
import copy
import inspect
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope
from mmengine.runner import load_checkpoint
from torch import nn

from .checkpoint import save_atomic
from .reparam import foldable_modules, max_abs_diff, reparameterize_model


def load_config(path: str, cfg_options: Optional[Dict[str, Any]] = None) -> Config:
    """Read a config (``_base_`` inheritance, ``custom_imports``) and apply ``--cfg-options`` overrides."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f'config file {path!r} does not exist (check the path)')
    cfg = Config.fromfile(path)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if 'model' not in cfg:
        raise KeyError(f"config {path!r} has no 'model' key: expected an mmdet/mmpretrain model config")
    return cfg


def resolve_work_dir(cfg: Config, config_path: str, work_dir: Optional[str] = None) -> str:
    """The output folder: ``work_dir`` if given, else the config's, else work_dirs/<config name>."""
    return work_dir or cfg.get('work_dir') or os.path.join(
        'work_dirs', os.path.splitext(os.path.basename(config_path))[0])


def build_model(cfg: Config, checkpoint: Optional[str] = None, device: str = 'cpu') -> nn.Module:
    """Build ``cfg.model`` in the config's default scope and load ``checkpoint`` strictly (safe loading)."""
    init_default_scope(cfg.get('default_scope', 'mmengine'))
    model = MODELS.build(cfg.model)
    if checkpoint is not None:
        load_checkpoint(model, checkpoint, map_location='cpu', strict=True)
    return model.to(device)


def _accepts_deploy(type_name) -> bool:
    """Whether the registered class (or builder function) of ``type_name`` takes a ``deploy`` argument."""
    builder = type_name if callable(type_name) else MODELS.get(type_name)
    if builder is None:
        return False
    return 'deploy' in inspect.signature(builder.__init__ if inspect.isclass(builder) else builder).parameters


def deploy_config(cfg: Config) -> Tuple[Config, List[str]]:
    """A copy of ``cfg`` with ``deploy=True`` on every model component that takes a ``deploy`` argument.

    Returns (config, paths of the components switched), e.g. ``['model.backbone']``.
    """
    cfg = copy.deepcopy(cfg)
    init_default_scope(cfg.get('default_scope', 'mmengine'))
    switched = []

    def visit(node, path):
        if isinstance(node, dict):
            if 'type' in node and _accepts_deploy(node['type']):
                node['deploy'] = True
                switched.append(path)
            for key, value in node.items():
                visit(value, f'{path}.{key}')
        elif isinstance(node, (list, tuple)):
            for i, value in enumerate(node):
                visit(value, f'{path}.{i}')

    visit(cfg.model, 'model')
    return cfg, switched


def random_inputs(shape: Sequence[int] = (2, 3, 224, 224), seed: int = 0) -> torch.Tensor:
    """A deterministic random batch of images (N, 3, H, W), standard normal, for equivalence checks."""
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


@torch.no_grad()
def fold_and_check(model: nn.Module, inputs: torch.Tensor) -> Tuple[nn.Module, float]:
    """Fold an eval-mode copy of ``model``; return it with the max abs difference of their tensor outputs.

    ``model`` itself is left untouched. Outputs are those of ``model(inputs)`` (mode 'tensor' for
    mmdet/mmpretrain models: raw head outputs, so detections and logits are covered).
    """
    reference = copy.deepcopy(model).eval()
    folded = reparameterize_model(copy.deepcopy(model).eval())
    return folded, max_abs_diff(reference(inputs), folded(inputs))


def fold_checkpoint(config: str, checkpoint: str, out: str, shape: Sequence[int] = (2, 3, 224, 224),
                    tolerance: float = 1e-4, overwrite: bool = False,
                    cfg_options: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """Fold a trained checkpoint of ``config`` and write the deploy checkpoint ``out`` (atomically).

    Checks the folded model against the original on a random batch, refuses to write when the max abs
    difference exceeds ``tolerance``, and proves that ``out`` loads strictly into the deploy config
    (``deploy_config``) with the same outputs. Returns a report (paths, diffs, params before/after).
    Raises ValueError when there is nothing to fold or the check fails; never overwrites ``checkpoint``.
    """
    if os.path.abspath(out) == os.path.abspath(checkpoint):
        raise ValueError(f'output {out!r} is the input checkpoint: choose another path, the input is '
                         'never overwritten')
    if os.path.exists(out) and not overwrite:
        raise FileExistsError(f'{out} already exists; choose another output path or pass --force')
    cfg = load_config(config, cfg_options)
    model = build_model(cfg, checkpoint).eval()
    pending = foldable_modules(model)
    if not pending:
        raise ValueError(f'nothing to fold: the model of {config} has no re-parameterizable modules '
                         '(no module with switch_to_deploy() in training form); its checkpoint is already '
                         'a deploy checkpoint')
    inputs = random_inputs(shape)
    folded, diff = fold_and_check(model, inputs)
    report = dict(config=config, checkpoint=checkpoint, out=out, folded_modules=len(pending),
                  max_abs_diff=diff, tolerance=tolerance,
                  params_before=sum(p.numel() for p in model.parameters()),
                  params_after=sum(p.numel() for p in folded.parameters()))
    if not diff <= tolerance:
        raise ValueError(f'folded model differs from the original by {diff:.3g} > tolerance {tolerance:g}; '
                         'nothing was written. Check that the BatchNorm statistics are finite, or raise '
                         '--tolerance for low-precision models.')
    dcfg, switched = deploy_config(cfg)
    deployed = build_model(dcfg).eval()
    deployed.load_state_dict(folded.state_dict(), strict=True)
    with torch.no_grad():
        report['deploy_config_diff'] = max_abs_diff(folded(inputs), deployed(inputs))
    report['deploy_switches'] = switched
    save_atomic(dict(meta=dict(deploy=True, source_checkpoint=os.path.abspath(checkpoint),
                               source_config=os.path.abspath(config), deploy_switches=switched,
                               fold_max_abs_diff=diff),
                     state_dict=folded.state_dict()), out, overwrite=overwrite)
    return report


def detection_inputs(batch_size: int, shape: Sequence[int], seed: int = 0):
    """Random images (N, 3, H, W) in [0, 255] and the DetDataSamples mmdet's ``predict`` needs."""
    from mmdet.structures import DetDataSample
    h, w = shape
    images = torch.rand(batch_size, 3, h, w, generator=torch.Generator().manual_seed(seed)) * 255
    samples = []
    for _ in range(batch_size):
        sample = DetDataSample()
        sample.set_metainfo(dict(img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w),
                                 batch_input_shape=(h, w), scale_factor=(1.0, 1.0)))
        samples.append(sample)
    return images, samples


def match_detections(reference, candidate, iou_threshold: float = 0.99) -> Dict[str, float]:
    """Match two detectors' ``pred_instances`` (one image): same label and IoU >= ``iou_threshold``.

    Returns counts, the number of reference boxes matched, and the max score difference of matches.
    """
    from mmdet.structures.bbox import bbox_overlaps
    ref, cand = reference.pred_instances, candidate.pred_instances
    result = dict(reference=len(ref), candidate=len(cand), matched=0, max_score_diff=0.0)
    if len(ref) == 0 or len(cand) == 0:
        return result
    iou = bbox_overlaps(ref.bboxes, cand.bboxes)
    iou[ref.labels[:, None] != cand.labels[None, :]] = 0
    best_iou, best = iou.max(dim=1)
    hit = best_iou >= iou_threshold
    result['matched'] = int(hit.sum())
    if hit.any():
        result['max_score_diff'] = float((ref.scores[hit] - cand.scores[best[hit]]).abs().max())
    return result


def setup_launcher(cfg: Config, launcher: str) -> None:
    """Set ``cfg.launcher``; on machines without CUDA, make ``torchrun`` work on CPU.

    MMEngine 0.10.7's pytorch launcher calls ``torch.cuda.set_device`` unconditionally. Without CUDA this
    initialises the process group with gloo from the torchrun environment instead (MMEngine then skips
    its own initialisation) and wraps the model in DDP without device ids.
    """
    cfg.launcher = launcher
    if launcher != 'pytorch' or torch.cuda.is_available():
        return
    import torch.distributed as dist
    if not dist.is_initialized():
        dist.init_process_group(backend='gloo')
    wrapper = cfg.get('model_wrapper_cfg') or dict(type='MMDistributedDataParallel', broadcast_buffers=False)
    wrapper.setdefault('device_ids', None)  # MMEngine would pass [LOCAL_RANK], a GPU index
    cfg.model_wrapper_cfg = wrapper


def shutdown_distributed(wait: bool = True) -> None:
    """Destroy the default process group, if any, once the work is done (``wait``: after every process
    reaches this point). A gloo group left to the interpreter's teardown can abort a process ('terminate
    called without an active exception') after a run that succeeded; pass ``wait=False`` on error paths,
    where another process may never arrive."""
    import torch.distributed as dist
    if not (dist.is_available() and dist.is_initialized()):
        return
    if wait:
        dist.barrier()
    dist.destroy_process_group()


def schedule_overrides(iters: int) -> Dict[str, Any]:
    """``--cfg-options`` that shorten/lengthen an iteration-based quick-start schedule to ``iters``
    (train loop, validation at the end, linear warm-up over the first 10% (at most 30 iterations) then
    cosine, final checkpoint)."""
    warmup = max(1, min(30, iters // 10))
    return {'train_cfg.max_iters': iters, 'train_cfg.val_interval': iters, 'param_scheduler.0.end': warmup,
            'param_scheduler.1.begin': warmup, 'param_scheduler.1.end': iters,
            'default_hooks.checkpoint.interval': iters}


def coco_data_options(data_root: str) -> Dict[str, Any]:
    """``--cfg-options`` pointing a COCO-format detection config (train/val/test dataloaders and the
    evaluators) at the dataset written by ``tools/make_synthetic.py det DATA_ROOT``."""
    root = data_root.rstrip('/') + '/'
    options = {f'{split}_dataloader.dataset.data_root': root for split in ('train', 'val', 'test')}
    options.update({f'{split}_evaluator.ann_file': root + 'annotations/instances_val.json'
                    for split in ('val', 'test')})
    return options


def evaluate(cfg: Config, checkpoint: str, work_dir: str) -> Dict[str, float]:
    """Run the config's test loop (its evaluator: COCO mAP, top-1...) on ``checkpoint``; returns metrics."""
    from mmengine.runner import Runner
    if not os.path.isfile(checkpoint):
        raise FileNotFoundError(f'checkpoint {checkpoint!r} does not exist (check the path)')
    cfg = copy.deepcopy(cfg)
    cfg.work_dir, cfg.load_from = work_dir, checkpoint
    if 'visualizer' in cfg:  # MMEngine reuses a same-named visualizer (and its log folder) in one process
        cfg.visualizer['name'] = f'visualizer:{os.path.abspath(work_dir)}'
    return Runner.from_cfg(cfg).test()
