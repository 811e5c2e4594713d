"""Params files of dotted keys (quick-look.yaml, smoke.yaml) as `dvc exp run` -S arguments.

    dvc exp run $(cifarpipe overrides quick-look.yaml)
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


def set_args(overrides: dict) -> list[str]:
    """`-S key=value` arguments for dvc exp run, one per override, the value in YAML flow style without
    spaces."""
    args = []
    for key, value in overrides.items():
        text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
        args += ["-S", f"{key}={text}"]
    return args


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="cifarpipe overrides", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="+", type=Path, metavar="FILE",
                    help="params files of dotted keys (group.key: value); a later file overrides an earlier")
    return ap


def main(argv: list[str] | None = None) -> None:
    files = parser().parse_args(argv).files
    print(" ".join(set_args({k: v for path in files for k, v in read_overrides(path).items()})))
