"""The data set as the stages use it: one npz of uint8 arrays (written by the download stage), its subsets,
and the per-channel statistics every later stage normalises with."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..core import paths
from ..core.artifacts import read_json


def load_dataset(path: str | Path, train_subset: int | None = None, test_subset: int | None = None) -> dict:
    """Load the artifact written by the download stage; keep the first N images of each split if asked."""
    with np.load(path, allow_pickle=False) as z:
        d = {k: z[k] for k in z.files}
    if train_subset is not None:
        d["x_train"], d["y_train"] = d["x_train"][:train_subset], d["y_train"][:train_subset]
    if test_subset is not None:
        d["x_test"], d["y_test"] = d["x_test"][:test_subset], d["y_test"][:test_subset]
    d["classes"] = [str(c) for c in d["classes"]]
    return d


def load_splits(data_params, *, train: bool = True, test: bool = True) -> tuple[dict, dict]:
    """(arrays, channel stats) with the data.train_subset / data.test_subset cut; a split not asked for is
    empty."""
    data = load_dataset(paths.DATASET, data_params.train_subset if train else 0,
                        data_params.test_subset if test else 0)
    return data, read_json(paths.STATS)


def channel_stats(x_train: np.ndarray) -> dict[str, list[float]]:
    """Per-channel mean and std of uint8 NHWC images, on the 0..1 scale."""
    channels = [x_train[..., c].astype(np.float64) / 255.0 for c in range(3)]
    return {"mean": [round(float(c.mean()), 6) for c in channels],
            "std": [round(float(c.std()), 6) for c in channels], "images": int(len(x_train))}
