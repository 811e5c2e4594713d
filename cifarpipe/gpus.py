"""One GPU per stage process on a box with several: claimed with an exclusive lock per GPU index.

DVC's experiment queue runs `--jobs N` experiments at once but does not assign GPUs to them (DVC issue
#4586). So a stage that runs on `train.device: auto` claims a GPU itself: it takes the first free
lock of /tmp/cifarpipe-gpu-locks/gpu<K>.lock (override the folder with CIFARPIPE_GPU_LOCKS) and holds it
for its lifetime. The locks are `flock` locks: the kernel releases them when the process ends, however
it ends (a crash, SIGKILL), so no stale lock survives. When every GPU is taken, the stage waits for one.
A process claims one GPU once (`claim_for_this_process`): a second model in the same process (the
benchmark's next seed, the next test) gets the GPU it already holds instead of waiting for itself.
`train.device: cuda:K` pins GPU K by hand and claims nothing.
"""
from __future__ import annotations

import fcntl
import os
import sys
import time
from pathlib import Path

DEFAULT_LOCK_DIR = "/tmp/cifarpipe-gpu-locks"


def lock_dir() -> Path:
    return Path(os.environ.get("CIFARPIPE_GPU_LOCKS", DEFAULT_LOCK_DIR))


def _try_lock(path: Path):
    handle = open(path, "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")  # who holds it, for a person looking
    handle.flush()
    return handle


def claim_gpu(count: int, poll_s: float = 2.0, timeout_s: float | None = None) -> tuple[int, object]:
    """(index, lock handle) of a free GPU among `count`; waits while all are taken.

    Keep the handle referenced for as long as the GPU is used: closing it (or the process ending) frees it.
    """
    folder = lock_dir()
    folder.mkdir(parents=True, exist_ok=True)
    started, told = time.monotonic(), False
    while True:
        for index in range(count):
            handle = _try_lock(folder / f"gpu{index}.lock")
            if handle is not None:
                return index, handle
        if timeout_s is not None and time.monotonic() - started > timeout_s:
            raise TimeoutError(f"all {count} GPUs stayed taken for {timeout_s:.0f} s ({folder})")
        if not told:
            print(f"all {count} GPU(s) are taken by other cifarpipe stages ({folder}); waiting for one",
                  file=sys.stderr, flush=True)
            told = True
        time.sleep(poll_s)


_HELD: tuple[int, object] | None = None  # (index, lock handle) this process holds until it ends


def claim_for_this_process(count: int) -> int:
    """The index of the GPU this process holds, claimed (waiting if need be) on the first call only."""
    global _HELD
    if _HELD is None:
        _HELD = claim_gpu(count)
    return _HELD[0]
