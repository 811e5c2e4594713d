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
from .optimizers import make_optimizer
from .one_cycle import build_scheduler
from ..evaluate.scoring import loss_and_accuracy, predict_logits

# In fp16, the loss scaler skips the optimizer step when the gradients overflow (the first steps, while it
# finds its scale); the LR schedule still advances with the step count, on purpose. torch warns about that.
warnings.filterwarnings("ignore",
                        message=r"Detected call of `lr_scheduler\.step\(\)` before `optimizer\.step\(\)`")

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


def train(model, train_loader, test_loader, compute: Compute, config: TrainConfig, *, step_model=None,
          on_epoch=None) -> list[dict]:
    """Train `model` with the one-cycle schedule; return one dict of metrics per epoch.

    `step_model` is what the steps call (`model` compiled or wrapped in DistributedDataParallel). Only rank 0
    shows progress and checkpoints. `on_epoch(history)` sees every epoch once, those resumed included.
    """
    step_model = model if step_model is None else step_model
    ranks, epochs, steps = compute.ranks, config.epochs, len(train_loader)
    optimizer = make_optimizer(model, config.optim, config.lr_max, compute.device)
    scheduler = build_scheduler(optimizer, lr_max=config.lr_max, lr_min=config.lr_min, epochs=epochs,
                                peak_epoch=config.peak_epoch, steps_per_epoch=steps)
    scaler, generator = compute.grad_scaler(), train_loader.generator
    sync_every = max(1, math.ceil(steps / config.progress_updates))
    start_epoch, history = resume(config, model=model, optimizer=optimizer, scheduler=scheduler,
                                  scaler=scaler, generator=generator)
    on_epoch = on_epoch if ranks.main else None
    if on_epoch is not None:  # on_epoch sees every epoch once, those restored first
        for done in range(1, len(history) + 1):
            on_epoch(history[:done])

    for epoch in range(start_epoch, epochs):
        model.train()
        started = time.perf_counter()
        loss_sum = torch.zeros((), device=compute.device)
        correct = torch.zeros((), device=compute.device, dtype=torch.long)
        first_bad_step = torch.full((), -1, device=compute.device, dtype=torch.long)
        seen = 0
        bar = tqdm(train_loader, total=steps, desc=f"epoch {epoch + 1}/{epochs}", leave=False,
                   disable=not ranks.main)
        for step, (x, y) in enumerate(bar):
            with record_function(FORWARD_BACKWARD):
                with compute.autocast():
                    logits = step_model(x)
                    loss = F.cross_entropy(logits, y)
                scaler.scale(loss).backward()
            with record_function(OPTIMIZER_STEP):
                lr = optimizer.param_groups[0]["lr"]
                scaler.step(optimizer)
                scaler.update()
                optimizer.zero_grad(set_to_none=True)
                scheduler.step()

            loss = loss.detach().float()
            loss_sum += loss * len(y)
            correct += (logits.argmax(1) == y).sum()
            seen += len(y)
            first_bad_step = torch.where((first_bad_step < 0) & ~torch.isfinite(loss), step, first_bad_step)
            if (step + 1) % sync_every == 0 or step + 1 == steps:
                train_loss, train_acc = read_progress(loss_sum, correct, first_bad_step, seen, epoch, ranks)
                bar.set_postfix(loss=f"{train_loss:.4f}", acc=f"{train_acc:.4f}")
        bar.close()

        with record_function(TEST_PASS):
            test_loss, test_acc = loss_and_accuracy(*predict_logits(model, test_loader, compute,
                                                                    tta_flip=False))
        compute.synchronize()
        history.append({"epoch": epoch + 1, "train_loss": round(train_loss, 6),
                        "train_acc": round(train_acc, 6), "test_loss": round(test_loss, 6),
                        "test_acc": round(test_acc, 6), "lr": lr,
                        "epoch_s": round(time.perf_counter() - started, 3)})
        if not ranks.main:
            continue
        print(" ".join(f"{k}={v}" for k, v in history[-1].items()), flush=True)
        if on_epoch is not None:
            on_epoch(history)
        if config.checkpoint is not None:
            torch_save({"fingerprint": config.fingerprint, "epoch": epoch, "history": history,
                        "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                        "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict(),
                        "generator": generator.get_state(), "torch_rng": torch.get_rng_state()},
                        config.checkpoint)
    return history


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


def resume(config: TrainConfig, *, model, optimizer, scheduler, scaler, generator) -> tuple[int, list]:
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
    if checkpoint.get("fingerprint") != config.fingerprint:
        print(f"checkpoint {path} was written with other params or data; starting from scratch")
        return 0, []
    model.load_state_dict(checkpoint["model"])
    optimizer.load_state_dict(checkpoint["optimizer"])
    scheduler.load_state_dict(checkpoint["scheduler"])
    scaler.load_state_dict(checkpoint["scaler"])
    generator.set_state(checkpoint["generator"])
    torch.set_rng_state(checkpoint["torch_rng"])
    print(f"resuming from {path} after epoch {checkpoint['epoch'] + 1}")
    return checkpoint["epoch"] + 1, checkpoint["history"]


def remove_checkpoint(path) -> None:
    if path is not None and os.path.exists(path):
        os.unlink(path)
