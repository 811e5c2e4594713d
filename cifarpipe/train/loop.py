"""The training loop: one plain loop over epochs and batches, with a checkpoint per epoch.

Nothing in a step waits for the device: loss and accuracy are read `progress_updates` times per epoch. A
checkpoint holds every random state the loop draws from, so a resumed CPU run ends as an uninterrupted one.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.profiler import record_function
from tqdm import tqdm

from ..compute.device import Compute
from ..core.artifacts import torch_load, torch_save
from ..core.errors import DivergedError
from ..evaluate.scoring import loss_and_accuracy, predict_logits
from .one_cycle import build_scheduler
from .optimizers import make_optimizer

# the parts of a step as torch.profiler names them (record_function), read by `cifarpipe bench profile`
FORWARD_BACKWARD, OPTIMIZER_STEP = "forward+backward", "optimizer step + schedule"
TEST_PASS = "test pass (per epoch)"


@dataclass(frozen=True)
class TrainConfig:
    """What a run follows besides its model and data: the optimizer, the one-cycle schedule, how it reports
    and resumes."""

    optim: object  # the optim params group
    epochs: int
    peak_epoch: float
    lr_max: float
    lr_min: float
    progress_updates: int = 4  # device->host syncs per epoch for the progress bar
    checkpoint: str | None = None  # saved after every epoch, resumed from when its fingerprint matches
    fingerprint: str = ""  # the params and inputs of the run (`fingerprint`)


def fingerprint(*parts) -> str:
    """A short hash of JSON-able values: which params and inputs a checkpoint was made with."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class RunState:
    """Everything a run draws from or updates: what a checkpoint saves and a resume restores."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: object
    scaler: object
    loader: object  # the training DeviceLoader: its random streams


def train(model, train_loader, test_loader, compute: Compute, config: TrainConfig, *, step_model=None,
          on_epoch=None) -> list[dict]:
    """Train `model` with the one-cycle schedule; return one dict of metrics per epoch.

    `step_model` is what the steps call (`model` compiled or wrapped in DistributedDataParallel). Only rank 0
    shows progress and checkpoints. `on_epoch(history)` sees every epoch once, those resumed included.
    """
    optimizer = make_optimizer(model, config.optim, config.lr_max, compute.device)
    scheduler = build_scheduler(optimizer, lr_max=config.lr_max, lr_min=config.lr_min, epochs=config.epochs,
                                peak_epoch=config.peak_epoch, steps_per_epoch=len(train_loader))
    state = RunState(model, optimizer, scheduler, compute.grad_scaler(), train_loader)
    start_epoch, history = resume(config, state)
    step_model = model if step_model is None else step_model
    on_epoch = on_epoch if compute.ranks.main else None
    if on_epoch is not None:  # the restored epochs first
        for done in range(1, len(history) + 1):
            on_epoch(history[:done])

    with warnings.catch_warnings():
        # In fp16 the loss scaler skips the optimizer step while it finds its scale (the first steps); the LR
        # schedule still advances with the step count, on purpose. torch warns about that.
        warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler\.step\(\)` before")
        for epoch in range(start_epoch, config.epochs):
            started = time.perf_counter()
            train_loss, train_acc, lr = train_epoch(step_model, state, compute, epoch, config)
            with record_function(TEST_PASS):
                test_loss, test_acc = loss_and_accuracy(*predict_logits(model, test_loader, compute,
                                                                        tta_flip=False))
            compute.synchronize()
            history.append({"epoch": epoch + 1, "train_loss": round(train_loss, 6),
                            "train_acc": round(train_acc, 6), "test_loss": round(test_loss, 6),
                            "test_acc": round(test_acc, 6), "lr": lr,
                            "epoch_s": round(time.perf_counter() - started, 3)})
            if not compute.ranks.main:
                continue
            print(" ".join(f"{k}={v}" for k, v in history[-1].items()), flush=True)
            if on_epoch is not None:
                on_epoch(history)
            if config.checkpoint is not None:
                save_checkpoint(config, state, epoch, history)
    return history


def train_epoch(step_model, state: RunState, compute: Compute, epoch: int,
                config: TrainConfig) -> tuple[float, float, float]:
    """One pass over the training batches: (mean loss, accuracy, the LR of its last step)."""
    state.model.train()
    loader, steps = state.loader, len(state.loader)
    sync_every = max(1, math.ceil(steps / config.progress_updates))
    loss_sum = torch.zeros((), device=compute.device)
    correct = torch.zeros((), device=compute.device, dtype=torch.long)
    first_bad_step = torch.full((), -1, device=compute.device, dtype=torch.long)
    seen = 0
    # a bar on a terminal only (disable=None): a log (dvc exp run piped to a file) gets the per-epoch lines
    bar = tqdm(loader, total=steps, desc=f"epoch {epoch + 1}/{config.epochs}", leave=False,
               disable=None if compute.ranks.main else True)
    for step, (x, y) in enumerate(bar):
        with record_function(FORWARD_BACKWARD):
            with compute.autocast():
                logits = step_model(x)
                loss = F.cross_entropy(logits, y)
            state.scaler.scale(loss).backward()
        with record_function(OPTIMIZER_STEP):
            lr = state.optimizer.param_groups[0]["lr"]
            state.scaler.step(state.optimizer)
            state.scaler.update()
            state.optimizer.zero_grad(set_to_none=True)
            state.scheduler.step()

        loss = loss.detach().float()
        loss_sum += loss * len(y)
        correct += (logits.argmax(1) == y).sum()
        seen += len(y)
        first_bad_step = torch.where((first_bad_step < 0) & ~torch.isfinite(loss), step, first_bad_step)
        if (step + 1) % sync_every == 0 or step + 1 == steps:
            train_loss, train_acc = read_progress(loss_sum, correct, first_bad_step, seen, epoch, compute.ranks)
            bar.set_postfix(loss=f"{train_loss:.4f}", acc=f"{train_acc:.4f}")
    bar.close()
    return train_loss, train_acc, lr


def read_progress(loss_sum, correct, first_bad_step, seen: int, epoch: int, ranks) -> tuple[float, float]:
    """(mean loss, accuracy) so far over every rank, in one device-to-host sync; raise if a loss was
    NaN/inf."""
    totals = ranks.sum(torch.stack([loss_sum, correct.float(),
                                    torch.tensor(float(seen), device=loss_sum.device)]))
    loss_sum, correct, seen, step = torch.cat([totals, ranks.max(first_bad_step.float().view(1))]).tolist()
    if step >= 0:
        raise DivergedError(f"training diverged: the loss became NaN or infinite at epoch {epoch + 1}, step "
                            f"{int(step) + 1}. Lower the learning rate (e.g. dvc exp run -S "
                            "optim.lr=<smaller>, or -S lr_pick.min_div=<larger>).")
    return loss_sum / seen, correct / seen


def save_checkpoint(config: TrainConfig, state: RunState, epoch: int, history: list[dict]) -> None:
    """Write what `resume` reads back: the run after `epoch` (0-based), with its params' fingerprint."""
    torch_save({"fingerprint": config.fingerprint, "epoch": epoch, "history": history,
                "model": state.model.state_dict(), "optimizer": state.optimizer.state_dict(),
                "scheduler": state.scheduler.state_dict(), "scaler": state.scaler.state_dict(),
                "streams": state.loader.random_state(), "torch_rng": torch.get_rng_state()}, config.checkpoint)


def resume(config: TrainConfig, state: RunState) -> tuple[int, list]:
    """(first epoch to run, the history so far): restored from config.checkpoint when it was written by a run
    with the same fingerprint, else (0, [])."""
    path = config.checkpoint
    if path is None or not Path(path).exists():
        return 0, []
    try:
        checkpoint = torch_load(path)
    except Exception as err:  # an unreadable checkpoint costs a restart, never a crash
        print(f"checkpoint {path} is unreadable ({err}); starting from scratch")
        return 0, []
    if checkpoint.get("fingerprint") != config.fingerprint or "streams" not in checkpoint:
        print(f"checkpoint {path} was written with other params or data; starting from scratch")
        return 0, []
    state.model.load_state_dict(checkpoint["model"])
    state.optimizer.load_state_dict(checkpoint["optimizer"])
    state.scheduler.load_state_dict(checkpoint["scheduler"])
    state.scaler.load_state_dict(checkpoint["scaler"])
    state.loader.set_random_state(checkpoint["streams"])
    torch.set_rng_state(checkpoint["torch_rng"])
    print(f"resuming from {path} after epoch {checkpoint['epoch'] + 1}")
    return checkpoint["epoch"] + 1, checkpoint["history"]


def remove_checkpoint(path) -> None:
    if path is not None and os.path.exists(path):
        os.unlink(path)
