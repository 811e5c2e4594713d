"""One training run over several processes: torch's elastic launcher (torchrun's machinery) and
DistributedDataParallel; rank 0 alone writes (docs/design.md, "A run over several processes")."""
from __future__ import annotations

import ctypes
import os
import signal
import sys
import uuid

import torch
import torch.distributed as dist

from ..compute.gpus import claim_gpus, visible_devices
from ..compute.ranks import Ranks
from ..core.errors import PipelineError


def launched() -> bool:
    """True inside a process started by the launcher (torchrun sets these)."""
    return "LOCAL_RANK" in os.environ and "WORLD_SIZE" in os.environ


def launch(nproc: int, module: str, device: str, args: list[str] = ()) -> None:
    """Run `python -m <module> <args>` as `nproc` ranks on this machine; raise PipelineError if any rank
    fails.

    On GPUs, the launcher first claims `nproc` free GPUs (compute/gpus.py, held until it ends, however it
    ends) and shows the ranks only those, so rank K's cuda:K is the K-th claimed GPU and no queued stage
    lands on them.
    """
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    claimed = []  # the lock handles: referenced until the ranks are done
    if device != "cpu" and torch.cuda.is_available():
        if nproc > torch.cuda.device_count():
            raise PipelineError(f"compute.gpus is {nproc} but torch sees {torch.cuda.device_count()} GPU(s): "
                                "lower compute.gpus")
        claimed = claim_gpus(nproc, torch.cuda.device_count())
        os.environ["CUDA_VISIBLE_DEVICES"] = visible_devices([i for i, _ in claimed],
                                                             os.environ.get("CUDA_VISIBLE_DEVICES"))

    config = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=nproc, run_id=str(uuid.uuid4()),
                          rdzv_backend="c10d", rdzv_endpoint="localhost:0", max_restarts=0,
                          monitor_interval=0.5)
    try:
        elastic_launch(config, sys.executable)("-m", module, *args)
    except ChildFailedError as err:
        rank, failure = err.get_first_failure()
        raise PipelineError(f"training rank {rank} of {nproc} failed (exit code {failure.exitcode}); its own "
                            "message is above") from None


def _die_with_parent() -> None:
    """The launcher starts each rank in a session of its own: make a rank die when the launcher does (even by
    SIGKILL), so a killed run leaves no orphan training on (Linux prctl PR_SET_PDEATHSIG)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)
    except OSError:
        pass


def join(device: str) -> tuple[Ranks, str]:
    """Join the process group of a launched run; return (ranks, the device this rank trains on)."""
    _die_with_parent()
    local = int(os.environ["LOCAL_RANK"])
    use_cuda = device != "cpu" and torch.cuda.is_available()
    if use_cuda:
        torch.cuda.set_device(local)
    dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return Ranks(dist.get_rank(), dist.get_world_size()), f"cuda:{local}" if use_cuda else "cpu"


def wrap(model: torch.nn.Module, compute) -> torch.nn.Module:
    """The model the training steps call: DistributedDataParallel (SyncBatchNorm on CUDA) in a launched
    run."""
    if not dist.is_initialized():
        return model
    cuda = compute.device.type == "cuda"
    if cuda:  # replaces the BatchNorm layers inside `model` itself, so the weights saved are the trained ones
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=[compute.device.index] if cuda
                                                     else None)


def leave() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()
