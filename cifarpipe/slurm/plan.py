"""What a submission runs: its experiments (the -S grid), its array's tasks, what prep runs, its jobs' keys.

The record of a submission (submission.json in its folder) is a Submission; its JSON keeps the shape
earlier versions wrote, so `status` reads their submissions too.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from ..core.errors import ToolError
from ..core.pipeline import Pipeline

PREP, TASK, AGGREGATE = "prep", "task", "aggregate"  # the roles of job.sh
ARRAY = "array"  # what a launch calls the job array of its tasks


@dataclass(frozen=True, order=True)
class JobKey:
    """One job of a submission: prep, task-I (the array's task I) or aggregate-E (experiment E's); what
    status lists first, --job selects, and the status files, logs and checkpoints are named by."""
    role: str
    index: int | None = None

    def __str__(self) -> str:
        return self.role if self.index is None else f"{self.role}-{self.index}"

    @classmethod
    def parse(cls, text: str) -> JobKey | None:
        """'prep', 'task-3' (or '3'), 'aggregate-0'; None for anything else."""
        role, dash, index = text.partition("-")
        if text.isdigit():
            return cls(TASK, int(text))
        if role == PREP and not dash:
            return cls(PREP)
        return cls(role, int(index)) if role in (TASK, AGGREGATE) and index.isdigit() else None

    @property
    def output(self) -> str:
        """sbatch --output for its log in logs/: an array task's index and its array's id are SLURM's."""
        return f"{TASK}-%a.%A.out" if self.role == TASK else f"{self}.%j.out"

    def log(self, slurm_id: str) -> str:
        """The name of the log of its run `slurm_id` (123, or 123_4 for an array task)."""
        return f"{self}.{slurm_id.split('_')[0]}.out"


# what --job takes (JobKey.parse reads it)
SELECTORS = "prep, task-I (or I), aggregate-E, or an experiment's name"


def array_task(array: str, index: int) -> str:
    """SLURM's id of task `index` of job array `array`: 123_4."""
    return f"{array}_{index}"


@dataclass(frozen=True)
class Experiment:
    """One point of the grid: its name, its seeds, its -S sets (but train.seeds) and the stages prep runs
    for it (the range test's lr_pick where optim.lr is unset, else only the data's)."""
    name: str
    seeds: list[int]
    sets: list[str]
    prep: tuple[str, ...]

    @property
    def aggregated(self) -> bool:
        """Whether its seeds run as tasks of their own, which an aggregate job then gathers."""
        return len(self.seeds) > 1

    def to_json(self) -> dict:
        return {**asdict(self), "prep": " ".join(self.prep)}

    @classmethod
    def from_json(cls, data: dict) -> Experiment:
        return cls(data["name"], list(data["seeds"]), list(data["sets"]), tuple(data["prep"].split()))


@dataclass(frozen=True)
class Task:
    """One task of the array: experiment `experiment`, all its seeds (seed None: it has one) or one."""
    experiment: int
    seed: int | None = None

    def to_json(self) -> list[int]:
        return [self.experiment] if self.seed is None else [self.experiment, self.seed]

    @classmethod
    def from_json(cls, data: list[int]) -> Task:
        return cls(*data)


@dataclass
class Launch:
    """One sbatch round of a submission (its first, or a resubmit): SLURM's ids of what it submitted, by
    prep, array and aggregate-E, and which array tasks and aggregate jobs it ran."""
    jobs: dict[str, str]
    tasks: list[int]
    aggregates: list[int]
    at: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%S"))

    def slurm_id(self, key: JobKey) -> str | None:
        """SLURM's id of the job `key` in this launch, None if it did not run it."""
        if key.role == TASK:
            return array_task(self.jobs[ARRAY], key.index) if key.index in self.tasks else None
        return self.jobs.get(str(key))


@dataclass
class Submission:
    """submission.json: what was submitted, at which commit, with which resources, and each launch."""
    commit: str
    git_remote: str
    dvc_remote: dict
    experiments: list[Experiment]
    tasks: list[Task]
    prep_runs: list[int]
    resources: dict[str, list[str]]  # role: its sbatch flags
    push: dict[str, int]  # tries, backoff
    max_parallel: int | None = None
    launches: list[Launch] = field(default_factory=list)

    def keys(self) -> list[JobKey]:
        """Every job, in order: prep, the array's tasks, the aggregate jobs."""
        return [JobKey(PREP), *(JobKey(TASK, i) for i in range(len(self.tasks))),
                *(JobKey(AGGREGATE, e) for e, x in enumerate(self.experiments) if x.aggregated)]

    def experiment_of(self, key: JobKey) -> Experiment | None:
        if key.role == TASK:
            return self.experiments[self.tasks[key.index].experiment]
        return self.experiments[key.index] if key.role == AGGREGATE else None

    def tasks_of(self, experiment: int) -> list[int]:
        """The array's tasks that run experiment `experiment`."""
        return [i for i, task in enumerate(self.tasks) if task.experiment == experiment]

    def last_job(self, experiment: int) -> JobKey:
        """The job that pushes the experiment by name: its aggregate job, or its one task."""
        if self.experiments[experiment].aggregated:
            return JobKey(AGGREGATE, experiment)
        return JobKey(TASK, self.tasks.index(Task(experiment)))

    def pushes_by_name(self, key: JobKey) -> bool:
        """Whether job `key` pushes its experiment to the git remote (the others push only the run-cache)."""
        return key.role == AGGREGATE or (key.role == TASK and self.tasks[key.index].seed is None)

    def to_json(self) -> dict:
        return {**vars(self), "experiments": [x.to_json() for x in self.experiments],
                "tasks": [t.to_json() for t in self.tasks], "launches": [asdict(x) for x in self.launches]}

    @classmethod
    def from_json(cls, data: dict) -> Submission:
        return cls(**{**data, "experiments": [Experiment.from_json(x) for x in data["experiments"]],
                      "tasks": [Task.from_json(t) for t in data["tasks"]],
                      "launches": [Launch(**x) for x in data["launches"]]})


def load(folder: Path) -> Submission:
    """The submission in `folder`, refused when it has none or an older cifarpipe wrote it."""
    path = folder / "submission.json"
    if not path.exists():
        raise ToolError(f"{folder}: no submission.json there; give the folder `cifarpipe slurm submit` "
                        "printed")
    data = json.loads(path.read_text())
    if "launches" not in data:
        raise ToolError(f"{folder} was submitted by an older cifarpipe, which kept no launches: read it with "
                        "that version")
    return Submission.from_json(data)


def seeds_of(override: str) -> list[int]:
    """The seeds of a 'train.seeds=[0,1,2]' set, refused unless they are a list of integers."""
    seeds = yaml.safe_load(override.partition("=")[2])
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) for s in seeds):
        raise ToolError(f"{override}: train.seeds takes a list of integers, e.g. 'train.seeds=[0,1,2]'")
    return seeds


def plan(points: list[list[str]], params: dict, prefix: str) -> tuple[list[Experiment], list[Task]]:
    """The experiments of the grid's points (named PREFIX, or PREFIX-1, PREFIX-2, ...) and the array's
    tasks: one per experiment of one seed, one per seed of an experiment of several."""
    experiments, tasks = [], []
    for e, overrides in enumerate(points):
        seeds, lr = params["train"]["seeds"], params["optim"]["lr"]
        for override in overrides:
            key, _, value = override.partition("=")
            if key == "train.seeds":
                seeds = seeds_of(override)
            elif key == "optim.lr":
                lr = yaml.safe_load(value)
        experiment = Experiment(f"{prefix}-{e + 1}" if len(points) > 1 else prefix, seeds,
                                [o for o in overrides if not o.startswith("train.seeds=")],
                                ("stats", "corrupt") if lr is not None else ("lr_pick", "corrupt"))
        experiments.append(experiment)
        tasks += [Task(e, s) for s in seeds] if experiment.aggregated else [Task(e)]
    return experiments, tasks


def seen_by(override: str, declared: list[str]) -> bool:
    """Whether a -S set changes one of the params keys `declared` (a group, or a key of one)."""
    key = override.partition("=")[0]
    return any(key == k or key.startswith(f"{k}.") or k.startswith(f"{key}.") for k in declared)


def shared_prep(experiments: list[Experiment], pipeline: Pipeline) -> list[int]:
    """The experiments prep runs for: one of each group whose prep stages see the same params (a grid over
    optim.lr runs them once, not once per point)."""
    runs, seen = [], set()
    for e, experiment in enumerate(experiments):
        stages = pipeline.upstream(list(experiment.prep))
        declared = [p for name in stages for p in pipeline.stages[name].params if isinstance(p, str)]
        group = (experiment.prep, tuple(o for o in experiment.sets if seen_by(o, declared)))
        if group not in seen:
            seen.add(group)
            runs.append(e)
    return runs
