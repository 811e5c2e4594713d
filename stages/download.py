"""Stage download: fetch the CIFAR-10 archive, verify its md5, parse it into data/cifar10.npz.

    python -m stages.download
"""
import tempfile
from pathlib import Path

from cifarpipe.core import paths
from cifarpipe.core.artifacts import write_npz
from cifarpipe.core.params import stage_params
from cifarpipe.core.stage import run_stage
from cifarpipe.download.archive import parse_archive
from cifarpipe.download.fetch import Limits, download


def main():
    params = stage_params("download")
    folder = Path(paths.DATASET).parent
    folder.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder) as tmp:  # on the same disk as the output, gone on failure
        archive = Path(tmp) / "cifar-10-python.tar.gz"
        download(params.data.url, params.data.md5, archive, Limits.of(params.runtime))
        arrays = parse_archive(archive)
    write_npz(paths.DATASET, **arrays)
    print(f"wrote {paths.DATASET}: {len(arrays['x_train'])} train and {len(arrays['x_test'])} test images, "
          f"classes {', '.join(arrays['classes'])}")


if __name__ == "__main__":
    run_stage(main)
