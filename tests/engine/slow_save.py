"""Fault injection for tests (imported through a config's custom_imports): the checkpoint named in
MMCOMPACT_TEST_SLOW_SAVE is written half, then a marker file MMCOMPACT_TEST_SLOW_SAVE_MARKER appears and
the write stalls, so that a test can SIGKILL the process by PID in the middle of the save."""
import os
import time

from mmcompact.checkpoint import io

_write = io.write_checkpoint_bytes
TARGET = os.environ.get('MMCOMPACT_TEST_SLOW_SAVE')
MARKER = os.environ.get('MMCOMPACT_TEST_SLOW_SAVE_MARKER')


def stalled_write(data: bytes, path: str) -> None:
    if not TARGET or os.path.basename(path) != TARGET:
        return _write(data, path)
    sidecar = path + io.HASH_SUFFIX
    if os.path.exists(sidecar):
        os.unlink(sidecar)
    with io.atomic_file(path, 'wb') as f:
        f.write(data[:len(data) // 2])
        f.flush()
        open(MARKER, 'w').close()
        time.sleep(600)  # killed here
        f.write(data[len(data) // 2:])


io.write_checkpoint_bytes = stalled_write
