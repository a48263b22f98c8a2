"""Imports of the OpenMMLab stack that fail on this generation of PyTorch with a message that says why."""
import importlib


def import_mmpretrain_heads():
    """``mmpretrain.models.heads``, or an ImportError that explains the known transformers clash."""
    try:
        return importlib.import_module('mmpretrain.models.heads')
    except TypeError as err:  # mmpretrain 1.2.0 imports its BLIP models when transformers >= 4.28
        try:
            from importlib.metadata import version
            transformers = version('transformers')
        except Exception:  # noqa: BLE001 - only used to word the message
            transformers = 'unknown'
        raise ImportError(
            f'mmpretrain 1.2.0 failed to import ({err}). It imports its multimodal models whenever '
            f'transformers >= 4.28 is installed, and those crash with transformers {transformers}. Fix: '
            "`pip uninstall transformers` in this environment, or `pip install 'transformers<4.28'`."
        ) from err
