"""Shared fixtures: a loopback HTTP server, tiny archives, and a throwaway git+DVC copy of the project."""
from __future__ import annotations

import contextlib
import csv
import functools
import http.server
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from cifarpipe.core.params import Model, load_params
from cifarpipe.tools.overrides import read_overrides
from slurm_cluster import slurm_cluster  # noqa: F401 (the session's SLURM cluster, for tests/test_slurm*.py)
from synthetic_cifar import write_archive

ROOT = Path(__file__).resolve().parent.parent
# One thread per process, here and in every stage a test starts: the suite runs two test processes at once on
# a 2-core machine (pytest -n 2), and torch's threads busy-wait, so two of them per core cost more than they
# gain on the tests' narrow network.
os.environ["OMP_NUM_THREADS"] = "1"
# What a fresh clone holds of the project (the pipeline's code, params and DVC setup), copied into each repo
PROJECT_FILES = ["cifarpipe", "stages", "scripts", "Makefile", "params.yaml", "quick-look.yaml", "smoke.yaml",
                 "resnet18.yaml", "dvc.yaml", ".dvc/config", ".dvc/.gitignore", ".dvc/plots", ".dvcignore", ".gitignore"]

# The README's smoke run (the quick look on a narrow network), on the tests' tiny archives (256 training
# images): batches of 16, so that two epochs hold enough steps for BatchNorm's running statistics (a second
# of CPU training; the network clearly beats chance). Every corruption at two severities rather than five, and
# two GradCAM grids rather than four: the suite runs these stages dozens of times, and what they do does not
# depend on how many (tests/test_robustness.py checks each corruption at every severity).
TINY_PARAMS = {**read_overrides(ROOT / "quick-look.yaml"), **read_overrides(ROOT / "smoke.yaml"),
               "train.batch_size": 16, "corrupt.severities": [1, 5], "gradcam.images": 2}


def shipped(name: str) -> Path:
    """The file `name` as git's index holds it (what was committed, or staged since), copied out of the
    workspace: `dvc exp run` applies an experiment's params to the workspace's params.yaml (the README's quick
    look does), and no test may depend on that. Outside a git checkout, the file itself."""
    proc = subprocess.run(["git", "show", f":{name}"], cwd=ROOT, capture_output=True)
    if proc.returncode:
        return ROOT / name
    copy = Path(os.environ.get("PYTEST_SHIPPED_DIR") or _shipped_dir()) / name
    copy.write_bytes(proc.stdout)
    return copy


@functools.cache
def _shipped_dir() -> str:
    import tempfile

    return tempfile.mkdtemp(prefix="cifarpipe-shipped-")


PARAMS_YAML = shipped("params.yaml")  # the defaults as shipped
DEFAULTS = load_params(PARAMS_YAML)  # the same, typed


def defaults(group: str, **changes):
    """A params group as params.yaml ships it, with `changes` (typed, as stages read it)."""
    return getattr(DEFAULTS, group).model_copy(update=changes)


NARROW = Model(name="custom_resnet", width=TINY_PARAMS["model.width"])  # the custom ResNet the tests train
REFERENCE_NETWORK = Model(name="custom_resnet", width=64)  # the reference recipe's
CPU_COMPUTE = defaults("compute", device="cpu", precision="fp32", channels_last=False, deterministic=False)


# The longest test files first, as the CI log's --durations measures them. pytest-xdist (--dist loadfile)
# hands whole files to the two workers in collection order: with a long file left for last, one core sat idle
# for four minutes. Longest first, the short files even out the end. A file not named here runs after these.
LONGEST_FIRST = ["test_workflow_run.py", "test_notebook.py", "test_sharing.py", "test_pipeline_e2e.py",
                 "test_seeds.py", "test_slurm.py", "test_review.py", "test_resume.py", "test_ddp.py", "test_benchmark.py"]


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    # a stable sort: each file's tests keep their order
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


@pytest.fixture(autouse=True)
def own_gpu_locks(tmp_path, monkeypatch):
    """Each test, and every stage it starts, claims GPUs in a folder of its own. On a GPU box the test process
    keeps the GPU its first model claimed (cifarpipe/compute/gpus.py); without this, a `dvc repro` started by
    a later test would wait for that lock forever."""
    monkeypatch.setenv("CIFARPIPE_GPU_LOCKS", str(tmp_path / "gpu-locks"))


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@contextlib.contextmanager
def serving(folder: Path):
    """(folder, base URL): files put in the folder are served over real HTTP on 127.0.0.1 while the block
    runs."""
    folder.mkdir(parents=True, exist_ok=True)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             functools.partial(_QuietHandler, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield folder, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def http_root(tmp_path):
    with serving(tmp_path / "www") as served:
        yield served


def tiny_archive_in(folder: Path) -> str:
    """A tiny learnable archive (256 train, 100 test images) written into `folder`; returns its md5."""
    return write_archive(folder / "cifar-10-python.tar.gz", n_train=256, n_test=100)


@pytest.fixture
def tiny_archive(http_root):
    """(URL, md5) of a tiny learnable archive served over loopback HTTP."""
    folder, base = http_root
    return f"{base}/cifar-10-python.tar.gz", tiny_archive_in(folder)


def set_params(repo: Path, overrides: dict) -> None:
    path = repo / "params.yaml"
    params = yaml.safe_load(path.read_text())
    for dotted, value in overrides.items():
        group, key = dotted.split(".", 1)
        params[group][key] = value
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def bare_env() -> dict:
    """A stage run by hand with an empty PATH (no dvc, no git): only the project and the packages' import
    path."""
    return {"PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
            "PATH": ""}


def tool_env() -> dict:
    """The environment for dvc and the stages: this interpreter's bin folder first on PATH."""
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env.setdefault("GIT_AUTHOR_NAME", "cifarpipe tests")
    env.setdefault("GIT_AUTHOR_EMAIL", "tests@cifarpipe.invalid")
    env.setdefault("GIT_COMMITTER_NAME", "cifarpipe tests")
    env.setdefault("GIT_COMMITTER_EMAIL", "tests@cifarpipe.invalid")
    env["DVC_NO_ANALYTICS"] = "1"
    return env


def run(cmd: list[str], cwd: Path, check: bool = True, env_extra: dict | None = None,
        **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, env={**tool_env(), **(env_extra or {})}, capture_output=True,
                          text=True, **kw)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {proc.returncode}\nstdout:\n{proc.stdout[-4000:]}\n"
                             f"stderr:\n{proc.stderr[-4000:]}")
    return proc


def dvc(*args, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    return run([sys.executable, "-m", "dvc", *args], cwd=cwd, check=check)


def readme_exp_show() -> list[str]:
    """The command the README gives for reading the experiments, as arguments."""
    found = re.search(r"^\s+(cifarpipe exps[^#&\n]*)", (ROOT / "README.md").read_text(), re.M)
    assert found, "the README no longer shows how to read the experiments"
    return shlex.split(found.group(1))


def ran(output: str) -> list[str]:
    """The stages a dvc repro / exp run printed as running, in order."""
    return re.findall(r"Running stage '([\w@.-]+)'", output)


def experiments(repo) -> dict:
    """{experiment name: its data in `dvc exp show --json`} for the experiments of every commit."""
    found = {}
    for commit in json.loads(dvc("exp", "show", "--json", cwd=repo).stdout):
        for exp in commit.get("experiments") or []:
            for rev in exp.get("revs", []):
                found[rev.get("name") or rev["rev"]] = rev.get("data") or {}
    return found


def run_queue(repo, jobs: int = 1, timeout_s: float = 600) -> str:
    """`dvc queue start`, then wait until nothing is queued or running; return `dvc queue status`."""
    dvc("queue", "start", "--jobs", str(jobs), cwd=repo)
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        status = dvc("queue", "status", cwd=repo).stdout
        if "Queued" not in status and "Running" not in status:
            break
        time.sleep(3)
    return status


def live_history(repo, seed: int = 0) -> list[dict]:
    """Stage train@seed's per-epoch metrics as dvclive wrote them (one TSV per metric), one dict per step."""
    steps: dict[int, dict] = {}
    for tsv in sorted((repo / f"dvclive/train/seed{seed}/plots/metrics").glob("*.tsv")):
        with open(tsv) as f:
            for row in csv.DictReader(f, delimiter="\t"):
                steps.setdefault(int(row["step"]), {"epoch": int(row["step"])})[tsv.stem] = row[tsv.stem]
    return [steps[k] for k in sorted(steps)]


def make_repo(dest: Path, url: str, md5: str, overrides: dict | None = None) -> Path:
    """A git repo holding the project, with data.url/md5 pointed at the test archive, committed."""
    dest.mkdir(parents=True)
    for name in PROJECT_FILES:
        src = PARAMS_YAML if name == "params.yaml" else ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    set_params(dest, {"data.url": url, "data.md5": md5, **TINY_PARAMS, **(overrides or {})})
    run(["git", "init", "-q", "-b", "main"], dest)
    run(["git", "add", "-A"], dest)
    run(["git", "commit", "-qm", "project"], dest)
    return dest


@pytest.fixture
def repo(tmp_path, tiny_archive):
    return make_repo(tmp_path / "repo", *tiny_archive)


def shared_build(tmp_path_factory, name: str, build) -> Path:
    """A repo that `build(dest)` makes once per suite run, whichever xdist worker asks first: the others wait
    on a file lock in the folder all workers share, then read it (copy it before changing it)."""
    from filelock import FileLock

    root = tmp_path_factory.getbasetemp()
    root = root.parent if os.environ.get("PYTEST_XDIST_WORKER") else root
    done = root / f"shared-{name}"
    with FileLock(str(root / f"shared-{name}.lock")):
        if not done.exists():
            partial = root / f"shared-{name}.partial"
            shutil.rmtree(partial, ignore_errors=True)
            build(partial)
            partial.rename(done)
    return done


@pytest.fixture(scope="session")
def baseline(tmp_path_factory) -> tuple[Path, str]:
    """(repo, what `dvc repro` printed): the project reproduced once from scratch per suite run, its archive
    fetched over HTTP, committed as "baseline run". Read it, or copy it (copy_repo) to change it."""
    def build(dest: Path) -> None:
        dest.mkdir(parents=True)
        with serving(dest / "www") as (folder, base):
            repo = make_repo(dest / "repo", f"{base}/cifar-10-python.tar.gz", tiny_archive_in(folder))
            output = dvc("repro", cwd=repo).stdout
        run(["git", "add", "-A"], repo)
        run(["git", "commit", "-qm", "baseline run"], repo)
        (dest / "repro.txt").write_text(output)

    shared = shared_build(tmp_path_factory, "baseline", build)
    return shared / "repo", (shared / "repro.txt").read_text()


def copy_repo(built: Path, dest: Path) -> Path:
    """A copy of a reproduced repo (git history, DVC cache and outputs included), for a test that changes
    it."""
    shutil.copytree(built, dest, symlinks=True)
    return dest


def odd_images(folder: Path, images) -> Path:
    """A folder of the files a user's photos hold, made with PIL from uint8 (N >= 6, 32, 32, 3) `images`.

    Each good file sits beside a plain twin it must read as: a phone's JPEG stored sideways with an EXIF
    orientation (phone.jpg, phone_upright.png); a grayscale image in 8, 16 and 32 bits (gray8.png, gray16.png,
    gray32.tif); an RGBA image whose transparent part stores green (cutout.png, cutout_on_white.png); a
    phone's HEIC stored sideways (photo.heic, by pillow-heif; photo_upright.png). Then a palette GIF and a
    CMYK JPEG; and the bad ones: decompression-bomb headers over PIL's error and warning limits (bomb.png,
    big.png), a truncated JPEG, a text file named .jpg (notes.jpg). readme.txt is no image, and
    sub/deeper.png is only for --recursive."""
    import struct
    import zlib

    import numpy as np
    import pillow_heif
    from PIL import Image

    folder.mkdir(parents=True)
    upright = Image.fromarray(images[0]).resize((64, 40), Image.Resampling.BICUBIC)
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to show, as a phone held upright writes it
    upright.transpose(Image.Transpose.ROTATE_90).save(folder / "phone.jpg", quality=95, exif=exif)
    with Image.open(folder / "phone.jpg") as stored:  # the JPEG's own pixels, turned upright by hand
        stored.convert("RGB").transpose(Image.Transpose.ROTATE_270).save(folder / "phone_upright.png")
    gray = np.asarray(Image.fromarray(images[1]).convert("L"))
    Image.fromarray(gray).save(folder / "gray8.png")
    Image.fromarray(gray.astype(np.uint16) * 257).save(folder / "gray16.png")  # PIL mode I;16
    Image.fromarray(gray.astype(np.float32) / 255).save(folder / "gray32.tif")  # PIL mode F, 0..1
    rgba = np.dstack([images[2], np.full(images[2].shape[:2], 255, np.uint8)])
    rgba[:, :12] = (0, 255, 0, 0)  # transparent, storing green
    Image.fromarray(rgba, "RGBA").save(folder / "cutout.png")
    on_white = images[2].copy()
    on_white[:, :12] = 255
    Image.fromarray(on_white).save(folder / "cutout_on_white.png")
    Image.fromarray(images[3]).convert("P").save(folder / "palette.gif")
    Image.fromarray(images[4]).convert("CMYK").save(folder / "cmyk.jpg")
    photo = Image.fromarray(images[3]).resize((64, 40), Image.Resampling.BICUBIC)
    photo.save(folder / "photo_upright.png")
    pillow_heif.register_heif_opener()  # as a phone writes it: sideways, and a rotation read off the EXIF
    photo.transpose(Image.Transpose.ROTATE_90).save(folder / "photo.heic", quality=-1, chroma=444,
                                                    exif=exif.tobytes())  # lossless, but YCbCr rounds
    png = (folder / "gray8.png").read_bytes()
    # a real PNG's header saying 2.5e9 pixels (over PIL's error limit) and 1e8 (over its warning limit)
    for name, side in [("bomb.png", 50_000), ("big.png", 10_000)]:
        ihdr = png[12:16] + struct.pack(">II", side, side) + png[24:29]
        (folder / name).write_bytes(png[:12] + ihdr + struct.pack(">I", zlib.crc32(ihdr)) + png[33:])
    Image.fromarray(images[5]).resize((400, 300)).save(folder / "truncated.jpg", quality=95)
    whole = (folder / "truncated.jpg").read_bytes()
    (folder / "truncated.jpg").write_bytes(whole[:len(whole) // 2])
    (folder / "notes.jpg").write_text("a shopping list, not a picture\n")
    (folder / "readme.txt").write_text("no image suffix: a folder's expansion skips it\n")
    (folder / "sub").mkdir()
    Image.fromarray(images[5]).save(folder / "sub" / "deeper.png")
    return folder
