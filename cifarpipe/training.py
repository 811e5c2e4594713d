"""The training loop: one plain loop over epochs and batches, with a checkpoint per epoch.

Nothing in the step loop waits for the device: loss and accuracy accumulate as device tensors and are
read (one sync) only `progress_updates` times per epoch, which is also when a NaN/inf loss is noticed.
A killed run resumes from the last epoch's checkpoint; on the CPU it then ends with exactly the metrics
of an uninterrupted run, because the checkpoint holds every random state the loop draws from.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import time
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from .artifacts import torch_load, torch_save
from .device import Compute
from .distributed import SINGLE, Ranks
from .errors import DivergedError
from .optim import make_optimizer
from .params import choose
from .predict import loss_and_accuracy, predict_logits
from .schedule import build_scheduler

# In fp16, the loss scaler skips the optimizer step when the gradients overflow (the first steps, while it
# finds its scale); the LR schedule still advances with the step count, on purpose. torch warns about that.
warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler\.step\(\)` before `optimizer\.step\(\)`")

COMPILE_MODES = ("default", "reduce-overhead", "max-autotune-no-cudagraphs", "max-autotune")  # torch.compile's modes


def fingerprint(*parts) -> str:
    """A short hash of JSON-able values: which params and inputs a checkpoint was made with."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def compile_for_training(model: torch.nn.Module, loader, compute: Compute, mode: str = "default",
                         backend: str = "inductor"):
    """torch.compile `model` and compile it now for every batch shape the loader yields; return (compiled, seconds).

    Each shape (the full batch and the epoch's last, partial one: 50,000 = 97 x 512 + 336) gets one static
    graph here, forward and backward, so no epoch pays a recompile and the compile time is measured apart
    from training. The warm-up steps change no weight, and the BatchNorm statistics they touch are restored.
    `mode` is torch.compile's (train.compile_mode): reduce-overhead also replays each graph as a CUDA graph,
    which saves the launch cost of every kernel (nothing changes on the CPU).
    """
    choose(COMPILE_MODES, "train.compile_mode", mode)
    options = {"mode": None if mode == "default" else mode} if backend == "inductor" else {}
    compiled = torch.compile(model, dynamic=False, backend=backend, **options)
    buffers = {name: b.clone() for name, b in model.named_buffers()}
    started = time.perf_counter()
    scaler = compute.grad_scaler()
    for size in loader.batch_sizes():
        x = torch.zeros(size, *loader.x.shape[1:], device=compute.device).contiguous(memory_format=compute.memory_format)
        y = torch.zeros(size, dtype=torch.long, device=compute.device)
        with compute.autocast():
            loss = F.cross_entropy(compiled(x), y)
        scaler.scale(loss).backward()
    model.zero_grad(set_to_none=True)
    with torch.no_grad():
        for name, b in model.named_buffers():
            b.copy_(buffers[name])
    compute.synchronize()
    return compiled, time.perf_counter() - started


def forward_backward(step_model, x, y, compute: Compute, scaler) -> tuple[torch.Tensor, torch.Tensor]:
    """One batch's forward pass (autocast) and backward pass, gradients accumulated; returns (logits, loss)."""
    with compute.autocast():
        logits = step_model(x)
        loss = F.cross_entropy(logits, y)
    scaler.scale(loss).backward()
    return logits, loss


def optimizer_step(optimizer, scheduler, scaler) -> float:
    """Apply and clear the gradients at this step's LR, then move the schedule on; returns the LR applied."""
    lr = optimizer.param_groups[0]["lr"]
    scaler.step(optimizer)
    scaler.update()
    optimizer.zero_grad(set_to_none=True)
    scheduler.step()
    return lr


def _read_progress(loss_sum, correct, first_bad_step, seen: int, epoch: int, ranks: Ranks) -> tuple[float, float]:
    """(mean loss, accuracy) so far over every rank, in one device-to-host sync; raise if a loss was NaN/inf."""
    totals = ranks.sum(torch.stack([loss_sum, correct.float(), torch.tensor(float(seen), device=loss_sum.device)]))
    loss_sum, correct, seen, step = torch.cat([totals, ranks.max(first_bad_step.float().view(1))]).tolist()
    if step >= 0:
        step = int(step)
        raise DivergedError(f"training diverged: the loss became NaN or infinite at epoch {epoch + 1}, step "
                            f"{step + 1}. Lower the learning rate (e.g. dvc exp run -S optim.lr=<smaller>, or "
                            "-S lr_pick.min_div=<larger>).")
    return loss_sum / seen, correct / seen


def _save_checkpoint(path, *, fingerprint, epoch, model, optimizer, scheduler, scaler, generator, history):
    torch_save({"fingerprint": fingerprint, "epoch": epoch, "model": model.state_dict(),
                "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict(), "generator": generator.get_state(),
                "torch_rng": torch.get_rng_state(), "history": history}, path)


def _try_resume(path, fingerprint, *, model, optimizer, scheduler, scaler, generator) -> tuple[int, list]:
    """Restore the checkpoint at `path` if it was written by a run with the same fingerprint."""
    if path is None or not Path(path).exists():
        return 0, []
    try:
        ckpt = torch_load(path)
    except Exception as err:  # an unreadable checkpoint costs a restart, never a crash
        print(f"checkpoint {path} is unreadable ({err}); starting from scratch")
        return 0, []
    if ckpt.get("fingerprint") != fingerprint:
        print(f"checkpoint {path} was written with other params or data; starting from scratch")
        return 0, []
    model.load_state_dict(ckpt["model"])
    optimizer.load_state_dict(ckpt["optimizer"])
    scheduler.load_state_dict(ckpt["scheduler"])
    scaler.load_state_dict(ckpt["scaler"])
    generator.set_state(ckpt["generator"])
    torch.set_rng_state(ckpt["torch_rng"])
    print(f"resuming from {path} after epoch {ckpt['epoch'] + 1}")
    return ckpt["epoch"] + 1, ckpt["history"]


def train(model, train_loader, test_loader, *, compute: Compute, optim: dict, lr_max: float, lr_min: float,
          schedule: dict, generator: torch.Generator, progress_updates: int = 4, step_model=None,
          checkpoint_path=None, fingerprint: str = "", on_epoch=None, ranks: Ranks = SINGLE) -> list[dict]:
    """Train `model` with the one-cycle schedule; return one dict of metrics per epoch.

    `step_model` is what the training steps call (`model` compiled and/or wrapped in DistributedDataParallel;
    default `model` itself). With several `ranks`, each trains on its slice of every batch (the loader's
    shard), the metrics are summed over the ranks, and only rank 0 shows progress, logs and checkpoints.
    With `checkpoint_path`, a checkpoint is saved after every epoch and a matching one is resumed from.
    `on_epoch(history)` is called once per epoch, in order, those restored from a checkpoint included (the
    train stage logs each epoch there, so a log rebuilt after a kill has no lost or duplicated step).
    """
    step_model = model if step_model is None else step_model
    optimizer = make_optimizer(model, optim, lr_max, compute.device)
    scheduler = build_scheduler(optimizer, lr_max=lr_max, lr_min=lr_min, epochs=schedule["epochs"],
                                peak_epoch=schedule["peak_epoch"], steps_per_epoch=len(train_loader))
    scaler = compute.grad_scaler()
    steps = len(train_loader)
    sync_every = max(1, math.ceil(steps / progress_updates))
    start_epoch, history = _try_resume(checkpoint_path, fingerprint, model=model, optimizer=optimizer,
                                       scheduler=scheduler, scaler=scaler, generator=generator)
    checkpoint_path = checkpoint_path if ranks.main else None
    on_epoch = on_epoch if ranks.main else None
    if on_epoch is not None:  # on_epoch sees every epoch once, those restored first
        for done in range(1, len(history) + 1):
            on_epoch(history[:done])

    for epoch in range(start_epoch, schedule["epochs"]):
        model.train()
        started = time.perf_counter()
        loss_sum = torch.zeros((), device=compute.device)
        correct = torch.zeros((), device=compute.device, dtype=torch.long)
        first_bad_step = torch.full((), -1, device=compute.device, dtype=torch.long)
        seen = 0
        bar = tqdm(train_loader, total=steps, desc=f"epoch {epoch + 1}/{schedule['epochs']}", leave=False,
                   disable=not ranks.main)
        for step, (x, y) in enumerate(bar):
            logits, loss = forward_backward(step_model, x, y, compute, scaler)
            lr = optimizer_step(optimizer, scheduler, scaler)

            loss = loss.detach().float()
            loss_sum += loss * len(y)
            correct += (logits.argmax(1) == y).sum()
            seen += len(y)
            first_bad_step = torch.where((first_bad_step < 0) & ~torch.isfinite(loss), step, first_bad_step)
            if (step + 1) % sync_every == 0 or step + 1 == steps:
                train_loss, train_acc = _read_progress(loss_sum, correct, first_bad_step, seen, epoch, ranks)
                bar.set_postfix(loss=f"{train_loss:.4f}", acc=f"{train_acc:.4f}")
        bar.close()

        test_loss, test_acc = loss_and_accuracy(*predict_logits(model, test_loader, compute, tta_flip=False))
        compute.synchronize()
        history.append({"epoch": epoch + 1, "train_loss": round(train_loss, 6),
                        "train_acc": round(train_acc, 6), "test_loss": round(test_loss, 6),
                        "test_acc": round(test_acc, 6), "lr": lr,
                        "epoch_s": round(time.perf_counter() - started, 3)})
        if ranks.main:
            print(" ".join(f"{k}={v}" for k, v in history[-1].items()), flush=True)
        if on_epoch is not None:
            on_epoch(history)
        if checkpoint_path is not None:
            _save_checkpoint(checkpoint_path, fingerprint=fingerprint, epoch=epoch, model=model, optimizer=optimizer,
                             scheduler=scheduler, scaler=scaler, generator=generator, history=history)
    return history


def remove_checkpoint(path) -> None:
    if path is not None and os.path.exists(path):
        os.unlink(path)
