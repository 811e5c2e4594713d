"""What the pipeline will use on this machine: torch and its CUDA, the GPUs, params.yaml's choice, dvc.

Also the GPUs the driver sees, dvc's remotes and the packages that differ from the lock: a torch built for a
newer CUDA than the driver is the usual fault.
"""
from __future__ import annotations

import platform
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import torch

from ..compute.device import nvidia_smi, resolve_compute, visible_nvidia_gpus
from ..core.params import load_params


def _driver_cuda() -> str | None:
    """The newest CUDA version the installed driver supports, from nvidia-smi's banner."""
    found = re.search(r"CUDA Version:\s*([\d.]+)", nvidia_smi() or "")
    return found.group(1) if found else None


def _pinned(requirements: Path) -> dict[str, str]:
    pins = {}
    for line in requirements.read_text().splitlines():
        if "==" in line and not line.lstrip().startswith("#"):
            name, version = line.split("==", 1)
            pins[re.sub(r"[-_.]+", "-", name.strip().lower())] = version.split()[0]
    return pins


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
    lines = [f"python      {platform.python_version()} ({sys.executable})",
             f"torch       {torch.__version__}, built for CUDA "
             f"{torch.version.cuda or 'none (CPU-only build)'}"]
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            p = torch.cuda.get_device_properties(i)
            lines.append(f"gpu {i}       {p.name}, {p.total_memory / 2**30:.0f} GiB, compute capability "
                         f"{p.major}.{p.minor}")
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
    try:
        lines.append(f"dvc         {metadata.version('dvc')}; remotes: {_dvc_remotes()}")
    except metadata.PackageNotFoundError:
        lines.append("dvc         not installed: pip install -r requirements.txt")
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
    import argparse

    return argparse.ArgumentParser(prog="cifarpipe doctor", description=__doc__)


def main(argv: list[str] | None = None) -> None:
    parser().parse_args(argv)
    print("\n".join(report()))


if __name__ == "__main__":
    main()
