"""Saving and restoring every RNG a training step draws from (Python, numpy, torch), for exact resume."""
import random

import numpy as np
import torch


def rng_state() -> dict:
    """Python, numpy and torch RNG states, as weights-only-loadable values."""
    name, keys, *rest = np.random.get_state()
    return dict(python=random.getstate(), numpy=(name, torch.from_numpy(keys.astype(np.int64)), *rest),
                torch=torch.get_rng_state())


def set_rng_state(state: dict) -> None:
    """Restore what ``rng_state`` returned."""
    random.setstate(state['python'])
    name, keys, *rest = state['numpy']
    np.random.set_state((name, keys.numpy().astype(np.uint32), *rest))
    torch.set_rng_state(state['torch'])
