"""Stage corrupt: the first corrupt.images test images under every corruption and severity listed ->
data/corrupted.npz, with the sets' fingerprint. Made here with CIFAR-10-C's constants (corrupt.source:
generate) or read from the published set (published: corrupt.url, corrupt.md5); no model is read, so every
seed and experiment shares them.

    python -m stages.corrupt"""
import time
from pathlib import Path

import numpy as np

from cifarpipe.core import paths
from cifarpipe.core.artifacts import write_npz
from cifarpipe.core.params import choose, stage_params
from cifarpipe.core.stage import run_stage
from cifarpipe.corrupt.corruptions import CORRUPTIONS, require
from cifarpipe.corrupt.names import BENCHMARK, EXTRAS, SEVERITIES
from cifarpipe.corrupt.published import published_sets
from cifarpipe.corrupt.sets import fingerprints, make_sets, usable_cores
from cifarpipe.data.dataset import load_dataset


def main():
    params = stage_params("corrupt")
    cfg = params.corrupt
    names, severities = cfg.corruptions, cfg.severities
    for name in names:
        choose(CORRUPTIONS, "corrupt.corruptions", name)
    started, workers = time.perf_counter(), 1
    if cfg.source == "published":
        x, y = published_sets(cfg.url, cfg.md5, names, severities, cfg.images, params.runtime,
                              Path(paths.CORRUPTED).parent)
    else:
        require(names)  # ImageMagick, the frost photographs: before any work
        data = load_dataset(paths.DATASET, 0, params.data.test_subset)  # the images only: no stats
        clean, y = data["x_test"][:cfg.images], data["y_test"][:cfg.images]
        workers = params.runtime.workers or usable_cores()
        x = make_sets(clean, names, severities, cfg.seed, workers=workers)
    found = fingerprints(x, y, names, severities)
    write_npz(paths.CORRUPTED, x=x, y=y, corruptions=np.array(names), severities=np.array(severities),
              source=np.array(cfg.source), benchmark=np.array(BENCHMARK), extras=np.array(EXTRAS),
              scale=np.array(SEVERITIES), **found)  # the convention, for the robustness stage
    print(f"wrote {paths.CORRUPTED} ({cfg.source}): {len(y)} test images x {len(names)} corruptions x "
          f"{len(severities)} severities in {time.perf_counter() - started:.1f} s on {workers} process"
          f"{'es' if workers > 1 else ''}; fingerprint "
          f"{str(found['fingerprint'])[:12]}")


if __name__ == "__main__":
    run_stage(main)
