"""dvc.yaml, read in one place: each stage's command, code and data deps, params and outputs, and the plots.

The stage runner (which params a stage may read, which stage makes a missing input), `cifarpipe reruns` and the
cluster code (which params the shared stages see) all read it through here.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

# libyaml's parser where PyYAML has it: ten times faster than the pure-Python one
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
CODE = ("cifarpipe", "stages")  # deps under these are code; the rest are data


def _path(entry) -> str:
    """An out, metric or plot as a path: `path` or `{path: {options}}`."""
    return next(iter(entry)) if isinstance(entry, dict) else entry


@dataclass(frozen=True)
class Stage:
    """One stage of dvc.yaml, as written (a matrix stage keeps its ${item.seed} templates)."""

    name: str
    cmd: str
    deps: tuple[str, ...]
    params: tuple  # `group` or `group.key`; a {file: [keys]} mapping where a stage reads another file
    outs: tuple[str, ...]  # outs, metrics and plots it writes
    matrix: dict | None = None

    @property
    def code(self) -> set[str]:
        """The code it lists: its script and the package folders or files it runs."""
        return {d for d in self.deps if d.split("/")[0] in CODE}

    @property
    def data(self) -> list[str]:
        return [d for d in self.deps if d.split("/")[0] not in CODE]

    def writes(self, path: str) -> bool:
        """Whether one of its outputs holds `path` (the output itself, or a file inside an output folder)."""
        path = os.path.normpath(path)
        for out in self.outs:
            literal = re.split(r"\$\{[^}]*\}", os.path.normpath(out))  # around a matrix stage's ${item.seed}
            if re.fullmatch("[^/]+".join(map(re.escape, literal)) + r"(/.*)?", path):
                return True
        return False


@dataclass(frozen=True)
class Pipeline:
    stages: dict[str, Stage]
    plots: list
    artifacts: dict

    def producer(self, path: str) -> str | None:
        """The stage whose outputs hold `path`, if any."""
        return next((name for name, stage in self.stages.items() if stage.writes(path)), None)

    def upstream(self, targets: list[str]) -> list[str]:
        """`targets` and every stage whose outputs they read, directly or not."""
        todo, seen = list(targets), []
        while todo:
            name = todo.pop()
            if name not in seen:
                seen.append(name)
                todo += [p for d in self.stages[name].data if (p := self.producer(d)) is not None]
        return seen


def parse_pipeline(text: str) -> Pipeline:
    """A Pipeline from dvc.yaml's text (a revision's, from `git show REV:dvc.yaml`, or the file's)."""
    raw = yaml.load(text, Loader=SAFE_LOADER) or {}
    stages = {}
    for name, entry in (raw.get("stages") or {}).items():
        outs = [_path(o) for kind in ("outs", "metrics", "plots") for o in entry.get(kind, [])]
        stages[name] = Stage(name, entry.get("cmd", ""), tuple(entry.get("deps", [])),
                             tuple(entry.get("params", [])), tuple(outs), entry.get("matrix"))
    return Pipeline(stages, raw.get("plots") or [], raw.get("artifacts") or {})


def read_pipeline(path: str | Path = "dvc.yaml") -> Pipeline:
    return parse_pipeline(Path(path).read_text())
