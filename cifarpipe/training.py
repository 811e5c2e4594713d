"""The training loop: one plain loop over epochs and batches, with a checkpoint per epoch.

Nothing in the step loop waits for the device: loss and accuracy accumulate as device tensors and are
read (one sync) only `progress_updates` times per epoch, which is also when a NaN/inf loss is noticed.
A killed run resumes from the last epoch's checkpoint; on the CPU it then ends with exactly the metrics
of an uninterrupted run, because the checkpoint holds every random state the loop draws from.
"""
from __future__ import annotations

import math
import os
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from .artifacts import torch_load, torch_save
from .errors import DivergedError, PipelineError
from .evaluation import autocast, loss_and_accuracy, predict_logits
from .schedule import build_scheduler


def resolve_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise PipelineError("train.device is cuda but no CUDA GPU is visible: set train.device to auto or cpu")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def setup_backend(device: torch.device, seed: int) -> None:
    """Seed torch and pick fast kernels on CUDA (cudnn autotuning, TF32 matmuls)."""
    torch.manual_seed(seed)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


def make_optimizer(model: torch.nn.Module, optim: dict, lr: float, device: torch.device) -> torch.optim.Optimizer:
    """Adam (beta1 = optim.momentum) or SGD (momentum, Nesterov); fused kernels on CUDA."""
    fused = {"fused": True} if device.type == "cuda" else {}
    if optim["name"] == "adam":
        return torch.optim.Adam(model.parameters(), lr=lr, betas=(optim["momentum"], 0.999),
                                weight_decay=optim["weight_decay"], **fused)
    return torch.optim.SGD(model.parameters(), lr=lr, momentum=optim["momentum"], nesterov=optim["nesterov"],
                           weight_decay=optim["weight_decay"], **fused)


def _read_progress(loss_sum, correct, first_bad_step, seen: int, epoch: int) -> tuple[float, float]:
    """(mean loss, accuracy) so far, in one device-to-host sync; raise if a loss was NaN/inf."""
    loss_sum, correct, step = torch.stack([loss_sum, correct.float(), first_bad_step.float()]).tolist()
    if step >= 0:
        step = int(step)
        raise DivergedError(f"training diverged: the loss became NaN or infinite at epoch {epoch + 1}, step "
                            f"{step + 1}. Lower the learning rate (e.g. dvc exp run -S optim.lr=<smaller>) or "
                            "raise schedule.lrmin_div.")
    return loss_sum / seen, correct / seen


def _save_checkpoint(path, *, fingerprint, epoch, model, optimizer, scheduler, generator, history):
    torch_save({"fingerprint": fingerprint, "epoch": epoch, "model": model.state_dict(),
                "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "generator": generator.get_state(), "torch_rng": torch.get_rng_state(), "history": history}, path)


def _try_resume(path, fingerprint, *, model, optimizer, scheduler, generator) -> tuple[int, list]:
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
    generator.set_state(ckpt["generator"])
    torch.set_rng_state(ckpt["torch_rng"])
    print(f"resuming from {path} after epoch {ckpt['epoch'] + 1}")
    return ckpt["epoch"] + 1, ckpt["history"]


def train(model, train_loader, test_loader, *, optim: dict, lr_max: float, schedule: dict, train_cfg: dict,
          generator: torch.Generator, checkpoint_path=None, fingerprint: str = "", on_epoch=None) -> list[dict]:
    """Train `model` with the one-cycle schedule; return one dict of metrics per epoch.

    `on_epoch(history)` is called after every epoch (the train stage writes live plot data there).
    """
    device = train_loader.x.device
    optimizer = make_optimizer(model, optim, lr_max, device)
    scheduler = build_scheduler(optimizer, lr_max=lr_max, lrmin_div=schedule["lrmin_div"], epochs=schedule["epochs"],
                                peak_epoch=schedule["peak_epoch"], steps_per_epoch=len(train_loader))
    step_model = torch.compile(model) if train_cfg["compile"] and device.type == "cuda" else model
    bf16, steps = train_cfg["bf16"], len(train_loader)
    sync_every = max(1, math.ceil(steps / train_cfg["progress_updates"]))
    start_epoch, history = _try_resume(checkpoint_path if train_cfg["checkpoint"] else None, fingerprint,
                                       model=model, optimizer=optimizer, scheduler=scheduler, generator=generator)

    for epoch in range(start_epoch, schedule["epochs"]):
        model.train()
        started = time.perf_counter()
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device, dtype=torch.long)
        first_bad_step = torch.full((), -1, device=device, dtype=torch.long)
        seen = 0
        bar = tqdm(train_loader, total=steps, desc=f"epoch {epoch + 1}/{schedule['epochs']}", leave=False)
        for step, (x, y) in enumerate(bar):
            with autocast(device, bf16):
                logits = step_model(x)
                loss = F.cross_entropy(logits, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            lr = optimizer.param_groups[0]["lr"]
            optimizer.step()
            scheduler.step()

            loss = loss.detach().float()
            loss_sum += loss * len(y)
            correct += (logits.argmax(1) == y).sum()
            seen += len(y)
            first_bad_step = torch.where((first_bad_step < 0) & ~torch.isfinite(loss), step, first_bad_step)
            if (step + 1) % sync_every == 0 or step + 1 == steps:
                train_loss, train_acc = _read_progress(loss_sum, correct, first_bad_step, seen, epoch)
                bar.set_postfix(loss=f"{train_loss:.4f}", acc=f"{train_acc:.4f}")
        bar.close()

        test_loss, test_acc = loss_and_accuracy(*predict_logits(model, test_loader, tta_flip=False, bf16=bf16))
        if device.type == "cuda":
            torch.cuda.synchronize()
        history.append({"epoch": epoch + 1, "train_loss": round(train_loss, 6),
                        "train_acc": round(train_acc, 6), "test_loss": round(test_loss, 6),
                        "test_acc": round(test_acc, 6), "lr": lr,
                        "epoch_s": round(time.perf_counter() - started, 3)})
        print(" ".join(f"{k}={v}" for k, v in history[-1].items()), flush=True)
        if on_epoch is not None:
            on_epoch(history)
        if train_cfg["checkpoint"] and checkpoint_path is not None:
            _save_checkpoint(checkpoint_path, fingerprint=fingerprint, epoch=epoch, model=model, optimizer=optimizer,
                             scheduler=scheduler, generator=generator, history=history)
    return history


def remove_checkpoint(path) -> None:
    if path is not None and os.path.exists(path):
        os.unlink(path)
