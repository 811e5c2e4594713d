"""Stage corrupt: the first corrupt.images test images under every corruption and severity of
corrupt.corruptions and corrupt.severities, CIFAR-10-C-style, regenerated (cifarpipe/corrupt/corruptions.py)
-> data/corrupted.npz.

It depends on the data and these params only, never on a model, so the sets are made once and shared by every
seed and experiment. Each (corruption, severity) draws from its own stream seeded with (corrupt.seed, its
position), so the sets are bit-repeatable.

    python -m stages.corrupt
"""
import time

import numpy as np

from cifarpipe.core import paths
from cifarpipe.core.artifacts import write_npz
from cifarpipe.core.params import choose, stage_params
from cifarpipe.core.stage import run_stage
from cifarpipe.corrupt.corruptions import CORRUPTIONS, corrupt
from cifarpipe.data.dataset import load_dataset


def main():
    params = stage_params("corrupt")
    cfg = params.corrupt
    names = cfg.corruptions
    for name in names:
        choose(CORRUPTIONS, "corrupt.corruptions", name)
    data = load_dataset(paths.DATASET, 0, params.data.test_subset)  # the images only: no stats
    clean, labels = data["x_test"][:cfg.images], data["y_test"][:cfg.images]
    started = time.perf_counter()
    sets = np.stack([np.stack([corrupt(clean, name, severity,
                                       np.random.default_rng([cfg.seed, i, severity]))
                               for severity in cfg.severities]) for i, name in enumerate(names)])
    write_npz(paths.CORRUPTED, x=sets, y=labels, corruptions=np.array(names),
              severities=np.array(cfg.severities))
    print(f"wrote {paths.CORRUPTED}: {len(clean)} test images x {len(names)} corruptions x "
          f"{len(cfg.severities)} severities in {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    run_stage(main)
