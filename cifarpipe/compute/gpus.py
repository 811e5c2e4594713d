"""One GPU per stage process on a box with several, claimed with an exclusive flock lock per GPU index.

The kernel frees a lock when its process ends, however it ends, so no stale lock survives (docs/design.md)."""
from __future__ import annotations

import fcntl
import os
import sys
import time
from pathlib import Path

DEFAULT_LOCK_DIR = "/tmp/cifarpipe-gpu-locks"


def lock_dir() -> Path:
    """The locks' folder; inside a SLURM job with GPUs, one of the job's own beside it (...-slurm-job-ID).

    SLURM gave the job its GPUs (CUDA_VISIBLE_DEVICES, often renumbered from 0 in every job), so jobs that
    share a node must not wait for each other's locks."""
    folder = Path(os.environ.get("CIFARPIPE_GPU_LOCKS", DEFAULT_LOCK_DIR))
    job = os.environ.get("SLURM_JOB_ID") if os.environ.get("SLURM_JOB_GPUS") else None
    return folder.with_name(f"{folder.name}-slurm-job-{job}") if job else folder


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


def claim_gpus(n: int, count: int, poll_s: float = 2.0,
               timeout_s: float | None = None) -> list[tuple[int, object]]:
    """[(index, lock handle)] of `n` free GPUs among `count`; waits while fewer than `n` are free.

    All or none: a run that held some GPUs while waiting for the rest could block another run waiting for
    those. Keep the handles referenced for as long as the GPUs are used: closing them (or the process ending)
    frees them.
    """
    folder = lock_dir()
    folder.mkdir(parents=True, exist_ok=True)
    started, told = time.monotonic(), False
    while True:
        held = []
        for index in range(count):
            handle = _try_lock(folder / f"gpu{index}.lock")
            if handle is not None:
                held.append((index, handle))
                if len(held) == n:
                    return held
        for _, handle in held:
            handle.close()
        if timeout_s is not None and time.monotonic() - started > timeout_s:
            raise TimeoutError(f"all {count} GPUs stayed taken for {timeout_s:.0f} s ({folder})")
        if not told:
            busy = (f"all {count} GPU(s) are taken" if n == 1 else
                    f"fewer than {n} of the {count} GPUs are free")
            print(f"{busy} by other cifarpipe stages ({folder}); waiting", file=sys.stderr, flush=True)
            told = True
        time.sleep(poll_s)


def visible_devices(indices: list[int], visible: str | None) -> str:
    """CUDA_VISIBLE_DEVICES for child processes that may use only the GPUs at `indices` of those this process
    sees (`visible`: this process's own CUDA_VISIBLE_DEVICES, if set)."""
    ids = [v.strip() for v in visible.split(",")] if visible else None
    return ",".join(ids[i] if ids else str(i) for i in indices)


_HELD: tuple[int, object] | None = None  # (index, lock handle) this process holds until it ends


def claim_for_this_process(count: int) -> int:
    """The index of the GPU this process holds, claimed (waiting if need be) on the first call only."""
    global _HELD
    if _HELD is None:
        _HELD = claim_gpus(1, count)[0]
    return _HELD[0]
