"""Install everything the default pipeline runs: the one install, which every place that installs calls.

    python3 scripts/install.py             # a venv in .venv: the runtime lock, frost photographs, cifarpipe
    python3 scripts/install.py --dev       # the same with the tests' tools (requirements-dev.txt)
    python3 scripts/install.py --venv DIR  # another venv folder
    python3 scripts/install.py --here      # into this Python (Colab): its Jupyter kernel's packages stay, and
                                           # its torch too, unless the driver shows a GPU torch cannot use
    python3 scripts/install.py --wheels DIR --target SITE  # a kit's wheels, offline (gpu_session.sh)

Three pip steps: the lock (requirements.txt, or requirements-dev.txt with --dev), then the frost photographs'
package (requirements-frost.txt) and cifarpipe itself, both without their dependencies (docs/dependencies.md
says why). What the pipeline needs beyond Python (ImageMagick's library) is for `cifarpipe doctor --check`.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import venv
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# torch and what only torch's wheels pull in, the packages --here leaves as the Python has them when it keeps
# its torch (not nvidia-ml-py, dvclive's): tests/test_environment.py checks it against the lock
TORCH_STACK = r"torch|torchvision|triton|cuda-[a-z0-9-]+|nvidia-(?!ml-py$)[a-z0-9-]+"
# The torch and torchvision installed (exit 1 without the pair) and whether torch sees a GPU (not when it
# cannot be imported)
PROBE = """from importlib.metadata import PackageNotFoundError, version
try:
    pair = [version("torch"), version("torchvision")]
except PackageNotFoundError:
    raise SystemExit(1)
try:
    import torch
    sees = torch.cuda.is_available()
except Exception:
    sees = False
print(*pair, sees)
"""


def pip(python: str, *args: str, quiet: bool) -> None:
    cmd = [python, "-m", "pip", "install", *(["-q"] if quiet else []), *args]
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, cwd=ROOT, check=True)


def venv_python(folder: Path) -> str:
    return str(folder / ("Scripts/python.exe" if os.name == "nt" else "bin/python"))


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def kernel_packages() -> dict[str, str]:
    """{name: version} of ipykernel and everything it needs, as this Python has them (none without it)."""
    installed = {normalized(dist.metadata["Name"]): dist.version for dist in metadata.distributions()
                 if dist.metadata["Name"]}
    kernel, todo = {}, ["ipykernel"]
    while todo:
        name = normalized(todo.pop())
        if name in installed and name not in kernel:
            kernel[name] = installed[name]
            todo += [re.match(r"[\w.-]+", req)[0] for req in metadata.requires(name) or []
                     if "extra==" not in req.replace(" ", "")]
    return kernel


def kept_torch(python: str) -> dict[str, str]:
    """{"torch": version, "torchvision": version} of `python`'s pair if it stays (said in a line), else {}."""
    probe = subprocess.run([python, "-c", PROBE], capture_output=True, text=True)
    if probe.returncode:
        return {}
    torch_version, vision_version, sees_gpu = probe.stdout.split()[-3:]
    driver_gpu = shutil.which("nvidia-smi") is not None and subprocess.run(
        ["nvidia-smi", "-L"], capture_output=True).returncode == 0
    if driver_gpu and sees_gpu != "True":
        print(f"this Python's torch {torch_version} does not see the GPU the driver shows: installing the "
              "pinned torch")
        return {}
    print(f"keeping this Python's torch {torch_version} and torchvision {vision_version}"
          + (" (torch sees the GPU)" if sees_gpu == "True" else ""))
    return {"torch": torch_version, "torchvision": vision_version}


def install_less(python: str, lock: Path, kernel: dict, kept: dict, quiet: bool) -> None:
    """The lock less the kernel's packages and the kept torch stack, those held at their versions (held.txt):
    pip stops rather than replace one."""
    folder = Path(tempfile.mkdtemp(prefix="cifarpipe-install-"))
    left_out = re.compile("|".join([*map(re.escape, kernel)] + ([TORCH_STACK] if kept else [])))
    lines = [line for line in lock.read_text().splitlines()
             if not ("==" in line and left_out.fullmatch(normalized(line.split("==")[0].strip())))]
    (folder / lock.name).write_text("\n".join(lines) + "\n")
    held = {**kernel, **kept}
    (folder / "held.txt").write_text("".join(f"{name}=={held[name]}\n" for name in sorted(held)))
    if kernel:
        print(f"the kernel's {len(kernel)} packages stay as they are: {', '.join(sorted(kernel))}")
    pins = sum("==" in line and not line.lstrip().startswith("#") for line in lines)
    print(f"installing {pins} of the {lock.name} pins ({folder / lock.name})")
    pip(python, "-r", str(folder / lock.name), "-c", str(folder / "held.txt"), quiet=quiet)


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python3 scripts/install.py", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dev", action="store_true", help="also the tests' tools (requirements-dev.txt)")
    where = ap.add_mutually_exclusive_group()
    where.add_argument("--venv", type=Path, default=Path(".venv"),
                       help="the venv to create or update (.venv)")
    where.add_argument("--here", action="store_true", help="into this Python instead of a venv (Colab)")
    where.add_argument("--target", type=Path, help="into this folder, with --wheels (put it on PYTHONPATH)")
    ap.add_argument("--wheels", type=Path, help="install every wheel in this folder, offline, without "
                    "dependencies: a kit for a machine whose own torch stays (benchmarks/gpu_prep.sh)")
    ap.add_argument("--quiet", "-q", action="store_true", help="pip's -q")
    return ap


def install_kit(ap: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """Every wheel of --wheels into --target, offline and without dependencies."""
    wheels = sorted(str(path) for path in args.wheels.resolve().glob("*.whl"))
    if not wheels:
        ap.error(f"--wheels {args.wheels}: no wheel there (bash benchmarks/gpu_prep.sh builds the kit)")
    pip(sys.executable, "--no-index", "--no-deps", "--no-compile", "--target", str(args.target.resolve()),
        *wheels, quiet=args.quiet)
    return 0


def main(argv=None) -> int:
    ap = parser()
    args = ap.parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)  # each line before pip's, in a log or a notebook cell
    if sys.version_info < (3, 11):
        print(f"error: cifarpipe needs Python 3.11 or newer, this is {sys.version.split()[0]}: run the "
              "script with a newer python3", file=sys.stderr)
        return 2
    if (args.wheels is None) != (args.target is None):
        ap.error("--wheels and --target go together: a kit's wheels into a folder")
    if args.wheels:
        return install_kit(ap, args)
    if args.here:
        python = sys.executable
    else:
        folder = args.venv if args.venv.is_absolute() else ROOT / args.venv
        if not Path(venv_python(folder)).exists():
            try:
                venv.create(folder, with_pip=True)
            except subprocess.CalledProcessError:
                print(f"error: python3 -m venv could not put pip into {folder}: install ensurepip (apt-get "
                      "install python3-venv on Debian and Ubuntu), or run with --here", file=sys.stderr)
                return 1
        python = venv_python(folder)
    lock = ROOT / ("requirements-dev.txt" if args.dev else "requirements.txt")
    kernel = kernel_packages() if args.here else {}
    kept = kept_torch(python) if args.here else {}
    if kernel or kept:
        install_less(python, lock, kernel, kept, quiet=args.quiet)
    else:
        pip(python, "-r", lock.name, quiet=args.quiet)
    pip(python, "--no-deps", "-r", "requirements-frost.txt", "-e", ".", quiet=args.quiet)
    print(f"installed for {python}; `cifarpipe doctor --check` says whether this machine has what the "
          "pipeline needs beyond Python")
    return 0


if __name__ == "__main__":
    sys.exit(main())
