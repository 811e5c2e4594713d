"""The `cifarpipe` command: what a user runs beside `dvc` (the stages themselves run through `dvc repro`).

    cifarpipe doctor                 what the pipeline will use on this machine (torch, CUDA, GPUs, dvc)
    cifarpipe exps                   the experiments at a glance: accuracy, interval, verdict, what changed
    cifarpipe predict IMAGE|DIR...   the exported model on image files and folders: top classes, probabilities
    cifarpipe report --base main     report.md for a pull request: this change against a base revision
    cifarpipe reruns                 which stages an edit of each folder reruns (from dvc.yaml)
    cifarpipe overrides FILE...      params files of dotted keys (quick-look.yaml, smoke.yaml) as -S arguments
    cifarpipe slurm submit -S ...    a grid and its seeds as a SLURM job array, one clone per job
    cifarpipe slurm status|cancel    each job's state (SLURM's and the job's own), node, GPU, log; cancel
    cifarpipe slurm gather|resubmit  pull the array's experiments, name what failed; resubmit only that
    cifarpipe bench speed ...        training time and accuracy beside the reference recipe's plain script
    cifarpipe bench profile ...      where a training step's time goes
    cifarpipe bench infer ...        the exported model's speed (onnxruntime, PyTorch, .pt2), predict's memory
"""
from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import yaml

from ..core.errors import PipelineError


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


# the subcommands: (module, its main) imported only when run, so `cifarpipe doctor` loads nothing else
COMMANDS = {
    ("doctor",): "doctor",
    ("exps",): "exps",
    ("predict",): "predict",
    ("report",): "report",
    ("reruns",): "reruns",
    ("slurm",): ".slurm.commands",  # cifarpipe/slurm/commands.py
    ("bench", "speed"): "bench.train_speed",
    ("bench", "profile"): "bench.step_profile",
    ("bench", "infer"): "bench.inference",
}
HELP = ("help", "-h", "--help")


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["overrides"] and argv[1:]:  # later files override earlier ones
        print(" ".join(set_args({k: v for path in argv[1:] for k, v in read_overrides(path).items()})))
        return
    for words, module in COMMANDS.items():
        if tuple(argv[:len(words)]) == words:
            run = importlib.import_module(f".{module}", "cifarpipe.tools").main
            try:
                return run(argv[len(words):])
            except PipelineError as err:  # the one catch: a failure the user can fix is one line
                print(f"error: {err}", file=sys.stderr)
                raise SystemExit(1) from None
    asked = not argv or argv[0] in HELP
    print(__doc__, file=sys.stdout if asked else sys.stderr)
    raise SystemExit(0 if asked else 2)


if __name__ == "__main__":
    main()
