"""Checked folding: the one function every writer of a folded model uses (fold tool, DeployHook, student
export, ONNX export), and the deploy config of a training config."""
import copy
import inspect
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope
from torch import nn

from ..checkpoint import save_atomic
from ..reparam import deploy_form, foldable_modules, max_abs_diff, reparameterize_model
from ..utils import build_model, eval_copy, load_config, random_inputs


class FoldMismatchError(ValueError):
    """A folded model differs from its training form beyond the tolerance (nothing was written)."""


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


@torch.no_grad()
def fold_checked(model: nn.Module, inputs: torch.Tensor, tolerance: float = 1e-4, setting: str = 'tolerance',
                 fuse_conv_bn: bool = False, deploy_cfg: Optional[Config] = None) -> Tuple[nn.Module, dict]:
    """Fold an eval-mode copy of ``model`` and prove it computes the same function.

    Compares ``model(inputs)`` (mode 'tensor' for mmdet/mmpretrain models: logits or raw head outputs) with
    the folded copy's and raises ``FoldMismatchError`` above ``tolerance`` (max abs difference), naming
    ``setting``, the option the user controls. ``fuse_conv_bn``: fold to the full deploy form
    (``reparam.deploy_form``: conv + BN pairs fused too, what ONNX ships) instead of the checkpoint form
    (re-param modules folded: loads into the ``deploy=True`` config). ``deploy_cfg``: also build that config,
    load the folded weights strictly and compare again. ``model`` is left untouched.

    Returns (folded model, report: ``max_abs_diff`` and, with ``deploy_cfg``, ``deploy_config_diff``).
    """
    reference = eval_copy(model)
    folded = deploy_form(model) if fuse_conv_bn else reparameterize_model(eval_copy(model))
    report = dict(max_abs_diff=max_abs_diff(reference(inputs), folded(inputs)), tolerance=tolerance)
    if not report['max_abs_diff'] <= tolerance:
        raise FoldMismatchError(
            f"folded model differs from the training form by {report['max_abs_diff']:.3g} > {setting} "
            f'{tolerance:g}; nothing was written. Check that the BatchNorm statistics are finite, or raise '
            f'{setting} for low-precision models.')
    if deploy_cfg is not None:
        deployed = build_model(deploy_cfg, device=inputs.device)
        deployed.eval()
        deployed.load_state_dict(folded.state_dict(), strict=True)
        report['deploy_config_diff'] = max_abs_diff(folded(inputs), deployed(inputs))
        if not report['deploy_config_diff'] <= tolerance:
            raise FoldMismatchError(
                f"the deploy config's model differs from the folded model by {report['deploy_config_diff']:.3g}"
                f' > {setting} {tolerance:g}: its deploy=True form does not build the folded structure')
    return folded, report


def fold_checkpoint(config: str, checkpoint: str, out: str, shape: Sequence[int] = (2, 3, 224, 224),
                    tolerance: float = 1e-4, overwrite: bool = False,
                    cfg_options: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """Fold a trained checkpoint of ``config`` and write the deploy checkpoint ``out`` (atomically).

    ``fold_checked`` with the deploy config: refuses to write beyond ``tolerance`` and proves that ``out``
    loads strictly into the config with deploy=True with the same outputs. Returns a report (paths, diffs,
    params before/after). Raises ValueError when there is nothing to fold or the check fails; never
    overwrites ``checkpoint``.
    """
    if os.path.isdir(out):
        raise IsADirectoryError(f'output {out!r} is a directory: give the path of the file to write, e.g. '
                                f"{os.path.join(out, 'deploy.pth')}")
    if not os.path.isdir(os.path.dirname(os.path.abspath(out))):
        raise FileNotFoundError(f'the folder of the output {out!r} does not exist: create it first')
    if os.path.abspath(out) == os.path.abspath(checkpoint):
        raise ValueError(f'output {out!r} is the input checkpoint: choose another path, the input is '
                         'never overwritten')
    if os.path.exists(out) and not overwrite:
        raise FileExistsError(f'{out} already exists; choose another output path or pass --force')
    cfg = load_config(config, cfg_options)
    model = build_model(cfg, checkpoint)
    model.eval()
    pending = foldable_modules(model)
    if not pending:
        raise ValueError(f'nothing to fold: the model of {config} has no re-parameterizable modules '
                         '(no module with switch_to_deploy() in training form); its checkpoint is already '
                         'a deploy checkpoint')
    dcfg, switched = deploy_config(cfg)
    folded, check = fold_checked(model, random_inputs(shape), tolerance, '--tolerance', deploy_cfg=dcfg)
    report = dict(config=config, checkpoint=checkpoint, out=out, folded_modules=len(pending),
                  params_before=sum(p.numel() for p in model.parameters()),
                  params_after=sum(p.numel() for p in folded.parameters()), deploy_switches=switched, **check)
    save_atomic(dict(meta=dict(deploy=True, source_checkpoint=os.path.abspath(checkpoint),
                               source_config=os.path.abspath(config), deploy_switches=switched,
                               fold_max_abs_diff=check['max_abs_diff']),
                     state_dict=folded.state_dict()), out, overwrite=overwrite)
    return report
