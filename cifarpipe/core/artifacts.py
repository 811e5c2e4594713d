"""Write every artifact atomically: into a temp file beside the target, then rename.

A stage that is killed or fails leaves either the old file or the new one, never half of one.
"""
from __future__ import annotations

import contextlib
import csv
import json
import os
import tempfile
from pathlib import Path


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


@contextlib.contextmanager
def atomic_path(target: str | Path):
    """Yield a temp path in the target's folder; rename it onto `target` only if the block succeeds."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())  # a file as open() makes it, not mkstemp's owner-only one
    try:
        yield Path(tmp)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_text(target, text: str) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(text)


def write_json(target, obj) -> None:
    write_text(target, json.dumps(obj, indent=2) + "\n")


def read_json(path):
    return json.loads(Path(path).read_text())


def write_csv(target, rows: list[dict], fields: list[str] | None = None) -> None:
    """Rows of equal keys (`fields`, default the first row's) to a CSV file with a header, as `dvc plots`
    reads it."""
    with atomic_path(target) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields or list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def write_npz(target, **arrays) -> None:
    """numpy arrays into one .npz file."""
    import numpy as np

    with atomic_path(target) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)


def torch_save(obj, target) -> None:
    import torch

    with atomic_path(target) as tmp:
        torch.save(obj, tmp)


def torch_load(path, map_location="cpu"):
    """Load a checkpoint or state_dict with weights_only=True: tensors and plain containers, no code."""
    import torch

    return torch.load(path, map_location=map_location, weights_only=True)


@contextlib.contextmanager
def atomic_dir(target: str | Path):
    """Yield a temp folder beside `target`; it replaces `target` whole only if the block succeeds."""
    import shutil

    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    tmp.chmod(0o777 & ~_umask())  # a folder as mkdir makes it, not mkdtemp's owner-only one
    try:
        yield tmp
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
