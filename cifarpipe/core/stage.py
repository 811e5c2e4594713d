"""How a stage script starts and ends: a failure the user can fix prints one line and exits 1, no traceback;
a missing input names the stage that makes it."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import yaml

from .. import messages
from .errors import PipelineError
from .pipeline import read_pipeline


def producing_stage(path: str, dvc_yaml: str | Path = "dvc.yaml") -> str | None:
    """The dvc.yaml stage whose outputs hold `path` (a file, or a file inside a folder it outputs), if any."""
    try:
        return read_pipeline(dvc_yaml).producer(path)
    except (OSError, AttributeError, TypeError, yaml.YAMLError):
        return None


def seed_argument(stage: str) -> int:
    """The seed a per-seed stage runs for: `python -m stages.<stage> --seed N` (dvc.yaml passes
    ${item.seed})."""
    parser = argparse.ArgumentParser(prog=f"python -m stages.{stage}")
    parser.add_argument("--seed", type=int, required=True, help="one of train.seeds")
    return parser.parse_args().seed


def run_stage(main) -> None:
    """Run a stage's `main`; turn the failures a user can fix into one line on stderr and exit status 1."""
    try:
        main()
    except PipelineError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(1)
    except FileNotFoundError as err:
        missing = os.path.relpath(err.filename) if err.filename else None
        stage = producing_stage(missing) if missing else None
        if stage is None:
            raise
        print(f"error: {messages.input_not_made_yet(missing, stage)}", file=sys.stderr)
        sys.exit(1)
