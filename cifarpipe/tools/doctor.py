"""What the pipeline will use on this machine: torch and its CUDA, the GPUs, params.yaml's choice, dvc.

Also the GPUs the driver sees, dvc's remotes, the packages that differ from the lock, and what params.yaml's
corruptions need beyond Python: a torch built for a newer CUDA than the driver is the usual fault.
"""
from __future__ import annotations

import argparse
import platform
import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

from ..core.params import load_params
from ..messages import INSTALL

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"  # in a checkout (the GPU kit's PYTHONPATH)


def _driver_cuda() -> str | None:
    """The newest CUDA version the installed driver supports, from nvidia-smi's banner."""
    from ..compute.device import nvidia_smi

    found = re.search(r"CUDA Version:\s*([\d.]+)", nvidia_smi() or "")
    return found.group(1) if found else None


def _pinned(requirements: Path) -> dict[str, str]:
    """{name: version} of the lock's pins whose markers hold here (the lock is for every platform)."""
    pins = {}
    for line in requirements.read_text().splitlines():
        if "==" in line and not line.lstrip().startswith("#"):
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate():
                pins[re.sub(r"[-_.]+", "-", requirement.name.lower())] = str(requirement.specifier)[2:]
    return pins


def floors() -> dict[str, Requirement]:
    """{name: requirement} of cifarpipe's dependencies that state a floor (torch>=2.11): installed, from its
    metadata; run from a checkout, from pyproject.toml."""
    try:
        declared = metadata.requires("cifarpipe") or []
    except metadata.PackageNotFoundError:
        declared = (tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"] if PYPROJECT.exists()
                    else [])
    found = (Requirement(text) for text in declared)
    return {r.name: r for r in found if r.marker is None and any(s.operator == ">=" for s in r.specifier)}


def below_floor(name: str, version: str) -> str | None:
    """The WARNING line when `name` at `version` is older than cifarpipe's floor for it, else None."""
    floor = floors().get(name)
    if floor is None or floor.specifier.contains(Version(version), prereleases=True):
        return None
    return (f"WARNING     {name} {version} is older than cifarpipe's floor {floor} (pyproject.toml), the "
            f"oldest it is tested with: install the pinned pair ({INSTALL}) or a newer {name}")


def apple_gpu() -> bool:
    """Whether torch sees Apple's GPU (mps), which the pipeline does not choose: nothing here tests it."""
    import torch

    return torch.backends.mps.is_available()


def system_needs(params_path: str = "params.yaml") -> list[str]:
    """One line for each need beyond Python that params.yaml's corruptions have and this machine lacks
    (ImageMagick's library, the frost photographs), naming what to install."""
    corrupt = load_params(params_path).corrupt
    if corrupt.source != "generate":  # the published sets are read, not made here
        return []
    from ..corrupt.corruptions import missing

    return missing(corrupt.corruptions)


def _dvc_remotes() -> str:
    try:
        out = subprocess.run([sys.executable, "-m", "dvc", "remote", "list"], capture_output=True, text=True,
                             timeout=60)
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"could not ask dvc ({err})"
    if out.returncode != 0:
        said = out.stderr.strip().splitlines()[-1] if out.stderr.strip() else out.returncode
        return f"could not ask dvc: {said}"
    lines = [" ".join(line.split()) for line in out.stdout.splitlines() if line.strip()]
    return "; ".join(lines) if lines else "none configured (docs/sharing.md)"


def report(params_path: str = "params.yaml", requirements: str = "requirements.txt") -> list[str]:
    import torch
    import torchvision

    from ..compute.device import resolve_compute, visible_nvidia_gpus

    lines = [f"python      {platform.python_version()} ({sys.executable})",
             f"torch       {torch.__version__}, built for CUDA "
             f"{torch.version.cuda or 'none (CPU-only build)'}; torchvision {torchvision.__version__}"]
    lines += [line for line in (below_floor("torch", torch.__version__),
                                below_floor("torchvision", torchvision.__version__)) if line]
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            p = torch.cuda.get_device_properties(i)
            lines.append(f"gpu {i}       {p.name}, {p.total_memory / 2**30:.0f} GiB, compute capability "
                         f"{p.major}.{p.minor}")
    elif apple_gpu():
        lines.append("gpu         Apple's GPU (mps), which cifarpipe does not use (untested): the pipeline "
                     "runs on the CPU")
    else:
        lines.append("gpu         none that torch can use")
    gpus = visible_nvidia_gpus()
    driver_cuda = _driver_cuda()
    lines.append("driver      " + ("; ".join(gpus) + (f"; supports CUDA up to {driver_cuda}" if driver_cuda
                                                      else "")
                                   if gpus else "no nvidia-smi, or it lists no GPU"))
    if gpus and not torch.cuda.is_available():
        newest = driver_cuda or "the driver's version"
        lines.append("PROBLEM     the driver sees a GPU but torch cannot use it: install the torch build "
                     f"for CUDA {newest} or older (docs/dependencies.md)")
    if Path(params_path).exists():
        settings = load_params(params_path).compute
        compute = resolve_compute(settings)
        lines.append(f"pipeline    compute.device {settings.device} -> {compute.device}; compute.precision "
                     f"{settings.precision} -> {compute.precision}, "
                     f"{'channels_last' if compute.channels_last else 'contiguous'} ({compute.why}); "
                     f"deterministic {settings.deterministic}; compile {settings.compile}")
        lines += [f"PROBLEM     {line}" for line in system_needs(params_path)]
    try:
        lines.append(f"dvc         {metadata.version('dvc')}; remotes: {_dvc_remotes()}")
    except metadata.PackageNotFoundError:
        lines.append(f"dvc         not installed: {INSTALL}")
    if Path(requirements).exists():
        differ = []
        for name, version in sorted(_pinned(Path(requirements)).items()):
            try:
                have = metadata.version(name)
            except metadata.PackageNotFoundError:
                have = "missing"
            if have != version:
                differ.append(f"{name} {have} (pinned {version})")
        lines.append("packages    " + ("all as pinned in requirements.txt" if not differ
                                       else "differ from requirements.txt: " + ", ".join(differ)))
    return lines


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="cifarpipe doctor", description=__doc__)
    ap.add_argument("--check", action="store_true",
                    help="only what params.yaml's corruptions need beyond Python (ImageMagick's library "
                         "for motion_blur and snow, the frost photographs): a line for each that is missing, "
                         "and exit 1")
    return ap


def check(params_path: str = "params.yaml") -> int:
    """cifarpipe doctor --check: 0 when this machine has what params.yaml's pipeline needs beyond Python."""
    missing = system_needs(params_path)
    for line in missing:
        print(f"error: {line}", file=sys.stderr)
    if not missing:
        print(f"{params_path}: this machine has what its corruptions need beyond Python")
    return 1 if missing else 0


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.check:
        return check()
    print("\n".join(report()))
    return 0


if __name__ == "__main__":
    main()
