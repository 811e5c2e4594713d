"""Install everything the default pipeline runs: the one install, called from every place that installs.

    python3 scripts/install.py            # a venv in .venv: the runtime lock, the frost photographs, cifarpipe
    python3 scripts/install.py --dev      # the same with the tests' tools (requirements-dev.txt)
    python3 scripts/install.py --venv DIR # another venv folder
    python3 scripts/install.py --here     # into this Python (Colab): its torch stays, the rest from the lock

Three pip steps, in order: the lock (requirements.txt, or requirements-dev.txt with --dev); the frost
photographs' package and cifarpipe itself, both without dependencies (docs/dependencies.md says why).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def pip(python: str, *args: str, quiet: bool) -> None:
    cmd = [python, "-m", "pip", "install", *(["-q"] if quiet else []), *args]
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, cwd=ROOT, check=True)


def venv_python(folder: Path) -> str:
    return str(folder / ("Scripts/python.exe" if os.name == "nt" else "bin/python"))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python3 scripts/install.py", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dev", action="store_true", help="also the tests' tools (requirements-dev.txt)")
    where = ap.add_mutually_exclusive_group()
    where.add_argument("--venv", type=Path, default=Path(".venv"), help="the venv to create or update (.venv)")
    where.add_argument("--here", action="store_true", help="install into this Python instead of a venv")
    ap.add_argument("--quiet", "-q", action="store_true", help="pip's -q")
    args = ap.parse_args(argv)

    if sys.version_info < (3, 11):
        print(f"error: cifarpipe needs Python 3.11 or newer, this is {sys.version.split()[0]}: run the script "
              "with a newer python3", file=sys.stderr)
        return 2
    if args.here:
        python = sys.executable
    else:
        folder = args.venv if args.venv.is_absolute() else ROOT / args.venv
        if not Path(venv_python(folder)).exists():
            venv.create(folder, with_pip=True)
        python = venv_python(folder)
    lock = "requirements-dev.txt" if args.dev else "requirements.txt"
    pip(python, "-r", lock, quiet=args.quiet)
    pip(python, "--no-deps", "-r", "requirements-frost.txt", "-e", ".", quiet=args.quiet)
    return 0


if __name__ == "__main__":
    sys.exit(main())
