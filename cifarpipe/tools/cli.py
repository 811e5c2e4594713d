"""The `cifarpipe` command: what a user runs beside `dvc` (the stages themselves run through `dvc repro`).

    cifarpipe doctor                 what the pipeline will use on this machine (torch, CUDA, GPUs, dvc)
    cifarpipe exps                   the experiments at a glance: accuracy, interval, verdict, what changed
    cifarpipe predict IMAGE...       the exported model on image files: its top classes and probabilities
    cifarpipe report --base main     report.md for a pull request: this change against a base revision
    cifarpipe reruns                 which stages an edit of each folder reruns (from dvc.yaml)
    cifarpipe overrides FILE...      params files of dotted keys (quick-look.yaml, smoke.yaml) as -S arguments
    cifarpipe slurm submit -S ...    a grid and its seeds as a SLURM job array, one clone per job
    cifarpipe slurm gather|resubmit  pull the array's experiments, name what failed; resubmit only that
    cifarpipe bench speed ...        training time and accuracy beside the seeds' own script
    cifarpipe bench profile ...      where a training step's time goes
    cifarpipe bench infer ...        the exported model's inference speed: PyTorch against onnxruntime

Each subcommand imports only what it needs, so `cifarpipe doctor` answers without loading the others.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml


def read_overrides(path: str | Path) -> dict:
    """{dotted key: value} from a params file such as quick-look.yaml."""
    overrides = yaml.safe_load(Path(path).read_text()) or {}
    if not isinstance(overrides, dict) or not all(isinstance(k, str) and "." in k for k in overrides):
        raise SystemExit(f"{path}: expected a mapping of dotted params.yaml keys (group.key: value)")
    return overrides


def set_args(overrides: dict) -> list[str]:
    """`-S key=value` arguments for dvc exp run, one per override, the value in YAML flow style without
    spaces."""
    args = []
    for key, value in overrides.items():
        text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
        args += ["-S", f"{key}={text}"]
    return args


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    command, rest = (argv[0], argv[1:]) if argv else ("help", [])
    if command == "doctor":
        from .doctor import main as run
    elif command == "report":
        from .report import main as run
    elif command == "predict":
        from .predict import main as run
    elif command == "exps":
        from .exps import main as run
    elif command == "reruns":
        from .reruns import main as run
    elif command == "slurm":
        from .slurm import main as run
    elif command == "overrides" and rest:  # later files override earlier ones
        print(" ".join(set_args({k: v for path in rest for k, v in read_overrides(path).items()})))
        return
    elif command == "bench" and rest and rest[0] == "speed":
        from .bench.train_speed import main as run
        rest = rest[1:]
    elif command == "bench" and rest and rest[0] == "infer":
        from .bench.inference import main as run
        rest = rest[1:]
    elif command == "bench" and rest and rest[0] == "profile":
        from .bench.step_profile import main as run
        rest = rest[1:]
    else:
        print(__doc__, file=sys.stderr if command not in ("help", "-h", "--help") else sys.stdout)
        raise SystemExit(0 if command in ("help", "-h", "--help") else 2)
    run(rest)


if __name__ == "__main__":
    main()
