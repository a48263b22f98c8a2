"""Reading what MMEngine's LocalVisBackend logged (``<work_dir>/<timestamp>/vis_data/scalars.json``)."""
import glob
import json
import os
from typing import List


def read_scalars(work_dir: str) -> List[dict]:
    """The logged records (one dict per logging step: losses, lr, ``step``; val metrics too) of the latest
    run in ``work_dir``; empty when nothing was logged."""
    files = sorted(glob.glob(os.path.join(work_dir, '*', 'vis_data', 'scalars.json')))
    if not files:
        return []
    with open(files[-1]) as f:
        return [json.loads(line) for line in f if line.strip()]


def last_value(records: List[dict], key: str) -> float:
    """The last logged value of ``key`` (e.g. 'accuracy/top1'); KeyError naming the keys seen if absent."""
    values = [r[key] for r in records if key in r]
    if not values:
        seen = sorted({k for r in records for k in r})
        raise KeyError(f"'{key}' was never logged (logged keys: {seen})")
    return values[-1]


def final_metric(work_dir: str, key: str):
    """The last logged value of ``key`` in ``work_dir``'s latest run, or None when it never logged it (the
    run has not finished its validation): lets a study skip the runs it already has."""
    try:
        return last_value(read_scalars(work_dir), key)
    except KeyError:
        return None
