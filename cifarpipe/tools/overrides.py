"""Params files of dotted keys (quick-look.yaml, smoke.yaml) as `dvc exp run` -S arguments.

    dvc exp run $(cifarpipe overrides quick-look.yaml)
    dvc exp run $(cifarpipe overrides --shipped resnet18.yaml)    # the reference recipe, whatever the workspace

--shipped starts from every key of params.yaml as the last commit holds it, but those that do not define a recipe
(NOT_RECIPE: where the data comes from, how the math runs, settings that change no result), so an experiment that
`dvc exp run` applied to the workspace (the quick look) leaves no trace in the run.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..core.errors import ToolError


def read_overrides(path: str | Path) -> dict:
    """{dotted key: value} from a params file such as quick-look.yaml."""
    import yaml

    try:
        overrides = yaml.safe_load(Path(path).read_text()) or {}
    except OSError as err:
        raise ToolError(f"{path}: cannot be read ({err.strerror}): name a params file such as "
                        "quick-look.yaml") from None
    except yaml.YAMLError as err:
        raise ToolError(f"{path}: not YAML ({str(err).splitlines()[0]}): fix the file") from None
    if not isinstance(overrides, dict) or not all(isinstance(k, str) and "." in k for k in overrides):
        raise ToolError(f"{path}: expected a mapping of dotted params.yaml keys (group.key: value)")
    return overrides


NOT_RECIPE = ("data.url", "data.md5", "corrupt.url", "corrupt.md5", "compute.", "runtime.", "noise.")


def shipped(revision: str = "HEAD") -> dict:
    """{dotted key: value} of every key of params.yaml at `revision` that defines a recipe."""
    import subprocess

    import yaml

    proc = subprocess.run(["git", "show", f"{revision}:params.yaml"], capture_output=True, text=True)
    if proc.returncode != 0:
        raise ToolError(f"--shipped reads params.yaml as {revision} holds it, and git could not "
                        f"({proc.stderr.strip() or 'no git'}): run it in the project's git checkout")
    params = yaml.safe_load(proc.stdout)
    flat = {f"{group}.{key}": value for group, keys in params.items() for key, value in keys.items()}
    return {k: v for k, v in flat.items() if not k.startswith(NOT_RECIPE)}


def set_args(overrides: dict) -> list[str]:
    """`-S key=value` arguments for dvc exp run, one per override, the value in YAML flow style without
    spaces."""
    args = []
    for key, value in overrides.items():
        text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))  # null, [...]
        args += ["-S", f"{key}={text}"]
    return args


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="cifarpipe overrides", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="*", type=Path, metavar="FILE",
                    help="params files of dotted keys (group.key: value); a later file overrides an earlier")
    ap.add_argument("--shipped", action="store_true",
                    help="first every key of the committed params.yaml that defines a recipe (not the data's "
                         "source, compute, runtime or noise)")
    return ap


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    if not args.files and not args.shipped:
        raise ToolError("name a params file (quick-look.yaml), or --shipped: see cifarpipe overrides --help")
    merged = shipped() if args.shipped else {}
    for path in args.files:
        merged.update(read_overrides(path))
    print(" ".join(set_args(merged)))
