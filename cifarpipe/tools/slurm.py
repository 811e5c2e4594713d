"""A grid and its seeds on a SLURM cluster: `cifarpipe slurm submit|status|cancel|gather|resubmit|push`.

DVC has no cluster executor, and parallel jobs in one checkout block each other on DVC's lock (DVC issue
#7419), even with `dvc exp run --temp`. So every job works in a clone of its own, the pattern of Exscientia's
rdvc: it clones the git remote at the submitted commit into scratch space, pulls what the DVC remote holds,
runs `dvc exp run` and pushes the experiment, its outputs and the run-cache. Nothing writes to the user's
checkout while the jobs run; `gather` pulls the experiments into it afterwards.

A submission is one rendered script (job.sh, which --dry-run prints, its sbatch lines in its header) run in
three roles:
- prep: the stages every experiment shares (download, stats, range test, corrupted sets), once; each is
  restored from the run-cache when the DVC remote holds it already;
- task, a job array after prep: one experiment, or one seed of one that has several;
- aggregate, one job per experiment with several seeds, after its seeds' tasks: the whole seed list, every
  seed restored from the run-cache, so only what reads them all runs.

Each job writes what became of it to status/ in the submission's folder (default ~/cifarpipe-slurm/ID, shared
with the nodes like the logs and the training checkpoints): its state, exit code, node, GPUs, the signal that
stopped it and the clone it kept when a push failed. `status`, `gather` and `resubmit` read one view of every
job: SLURM's own (sacct where accounting runs, else scontrol) merged with those files.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from string import Template

import yaml

from ..core.artifacts import write_json, write_text

TEMPLATE = Path(__file__).with_name("slurm_job.sh")
SUBMISSIONS = Path(os.environ.get("CIFARPIPE_SLURM_DIR", Path.home() / "cifarpipe-slurm"))
# SLURM's states of a job that has not ended yet
ACTIVE = frozenset({"PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "SUSPENDED", "REQUEUED", "RESIZING",
                    "REQUEUE_HOLD", "REQUEUE_FED", "SIGNALING", "STAGE_OUT", "STOPPED"})
# SLURM's end states that say more than an exit code does; COMPLETED and FAILED defer to the job's own file
SLURM_KNOWS_BEST = frozenset({"CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "PREEMPTED", "BOOT_FAIL",
                              "DEADLINE"})
# DVC remote options that are credentials: they stay in the nodes' own DVC or cloud config
SECRET = re.compile(r"password|passphrase|secret|token|account_key|connection_string|key_id", re.I)
# sbatch --time: minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS
TIME_LIMIT = re.compile(r"\d+(:\d+){0,2}|\d+-\d+(:\d+){0,2}|UNLIMITED|INFINITE")
SELECTORS = "prep, task-I (or I), aggregate-E, or an experiment's name"


def fail(message: str):
    raise SystemExit(f"cifarpipe slurm: {message}")


def git(*args, cwd=".") -> str:
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    if proc.returncode:
        fail(f"git {' '.join(args)}: {proc.stderr.strip()}")
    return proc.stdout.strip()


# -- what is submitted ------------------------------------------------------------------------------------
def checked_text(what: str, value: str) -> str:
    """`value`, refused when it holds a newline, a NUL or another control character."""
    bad = next((c for c in value if ord(c) < 32 or ord(c) == 127), None)
    if bad is not None:
        fail(f"{what} {value!r} holds the control character {bad!r}, which would end a line of the job's "
             "script or sbatch lines: remove it")
    return value


def checked_name(name: str) -> str:
    """An experiment name DVC can keep as a git ref (refs/exps/../NAME), or refused saying why."""
    checked_text("-n", name)
    valid = subprocess.run(["git", "check-ref-format", f"refs/exps/00/0000/{name}"], capture_output=True)
    if not name or any(c.isspace() for c in name) or "/" in name or valid.returncode:
        fail(f"-n {name!r} is not a valid experiment name: DVC keeps it as a git ref, so no whitespace, no "
             "'/', none of ~^:?*[\\, no '..' or '@{', and not starting with '.' or ending in '.lock' "
             "(e.g. -n lr-sweep)")
    return name


def checked_options(options) -> None:
    """Every text value of the command line checked; the time limits in a form sbatch takes."""
    for key, value in vars(options).items():
        for text in value if isinstance(value, list) else [value]:
            if isinstance(text, (str, Path)):
                checked_text(f"--{key.replace('_', '-')}", str(text))
    for key in ("time", "prep_time", "aggregate_time"):
        value = getattr(options, key)
        if value is not None and not TIME_LIMIT.fullmatch(value):
            fail(f"--{key.replace('_', '-')} {value!r}: sbatch takes minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM "
                 "or D-HH:MM:SS")


def hydra_message(error: Exception) -> str:
    return " ".join(line.strip() for line in str(error).splitlines() if line.strip())


def grid(sets: list[str]) -> list[list[str]]:
    """The experiments `dvc exp run --queue` would make of these -S sets: DVC's own Hydra sweep, so
    'optim.lr=0.01,0.02' is two experiments. A set Hydra cannot parse is refused with Hydra's message."""
    from dvc.utils.hydra import get_hydra_sweeps, to_hydra_overrides

    for override in sets:
        checked_text("-S", override)
        try:
            to_hydra_overrides([override])
        except Exception as error:  # hydra.errors.OverrideParseException, and Hydra's others
            fail(f"-S {override!r}: {hydra_message(error)}")
    return [sweep.get("params.yaml", []) for sweep in get_hydra_sweeps({"params.yaml": sets})] or [[]]


def checked_sets(points: list[list[str]], params_text: str) -> None:
    """Each experiment's -S sets applied to params.yaml as `dvc exp run` applies them: a key params.yaml
    lacks is refused here with Hydra's message, not in a job."""
    from dvc.utils.hydra import apply_overrides

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "params.yaml"
        for overrides in points:
            path.write_text(params_text)
            try:
                apply_overrides(path, overrides)
            except Exception as error:  # dvc's InvalidArgumentError, from Hydra's ConfigCompositionException
                fail(f"-S {' '.join(overrides)}: {hydra_message(error.__cause__ or error)}")


def upstream_params(dvc_yaml: dict, targets: list[str]) -> list[str]:
    """The params.yaml keys that the stages `targets` and every stage they depend on declare (dvc.yaml)."""
    stages = dvc_yaml["stages"]
    made_by = {out if isinstance(out, str) else next(iter(out)): name for name, stage in stages.items()
               for out in stage.get("outs", [])}
    todo, seen, declared = list(targets), set(), []
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        declared += stages[name].get("params", [])
        todo += [made_by[dep] for dep in stages[name].get("deps", []) if dep in made_by]
    return declared


def shared_prep(experiments: list[dict], dvc_yaml: dict) -> list[int]:
    """The experiments prep runs for: one of each group whose prep stages see the same params (a grid over
    optim.lr runs them once, not once per point)."""
    runs, seen = [], set()
    for e, experiment in enumerate(experiments):
        declared = upstream_params(dvc_yaml, experiment["prep"].split())
        seen_by_prep = tuple(o for o in experiment["sets"] if any(
            o.partition("=")[0] == k or o.startswith(f"{k}.") or k.startswith(f"{o.partition('=')[0]}.")
            for k in declared))
        if (experiment["prep"], seen_by_prep) not in seen:
            seen.add((experiment["prep"], seen_by_prep))
            runs.append(e)
    return runs


def plan(points: list[list[str]], params: dict, prefix: str) -> tuple[list[dict], list[list]]:
    """The experiments (name, seeds, -S sets without train.seeds, what prep runs for it) and the array's
    tasks: [experiment] for an experiment of one seed, [experiment, seed] for each seed of one that has
    several. An experiment with optim.lr set needs no range test, so prep makes only its data."""
    experiments, tasks = [], []
    for e, overrides in enumerate(points):
        seeds, lr = params["train"]["seeds"], params["optim"]["lr"]
        for override in overrides:
            key, _, value = override.partition("=")
            if key == "train.seeds":
                seeds = yaml.safe_load(value)
                if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) for s in seeds):
                    fail(f"{override}: train.seeds takes a list of integers, e.g. 'train.seeds=[0,1,2]'")
            elif key == "optim.lr":
                lr = yaml.safe_load(value)
        experiments.append({"name": f"{prefix}-{e + 1}" if len(points) > 1 else prefix, "seeds": seeds,
                            "sets": [o for o in overrides if not o.startswith("train.seeds=")],
                            "prep": "stats corrupt" if lr is not None else "lr_pick corrupt"})
        tasks += [[e]] if len(seeds) == 1 else [[e, s] for s in seeds]
    return experiments, tasks


def dvc_remote() -> dict:
    """The checkout's default DVC remote: its name, URL (a local path made absolute: the jobs run elsewhere)
    and its options from every config level, its secrets left out."""
    from dvc.repo import Repo

    config = Repo(".").config
    name = config["core"].get("remote")
    if not name:
        fail("no default DVC remote: every node needs one to share outputs; add it with "
             "`dvc remote add -d NAME URL` (docs/sharing.md)")
    section = {}
    for level in config.LEVELS:  # system, global, repo, local: the later wins
        section.update(config.load_one(level).get("remote", {}).get(name, {}))
    url = str(section.pop("url"))
    options = {key: str(value).lower() if isinstance(value, bool) else str(value)
               for key, value in section.items() if not SECRET.search(key)}
    return {"name": name, "url": url if "://" in url else str(Path(url).resolve()), "options": options}


def checked_commit(git_remote: str) -> tuple[str, str]:
    """(commit, git remote URL): the current commit, refused unless the remote has it and nothing tracked
    is changed, since the jobs clone the remote at that commit."""
    if git("status", "--porcelain", "--untracked-files=no"):
        fail("the checkout has uncommitted changes, which the jobs would not see: commit them, then "
             f"`git push {git_remote}`")
    commit = git("rev-parse", "HEAD")
    url = git("remote", "get-url", git_remote)
    if not git("branch", "-r", "--contains", commit, "--list", f"{git_remote}/*"):
        fail(f"commit {commit[:7]} is not on {git_remote}, where the jobs clone from: "
             f"`git push {git_remote} HEAD`")
    return commit, url if "://" in url or ":" in url.split("/")[0] else str(Path(url).resolve())


def resources(options, range_test: bool) -> dict[str, list[str]]:
    """Each role's sbatch flags: a task gets --gres and --time; prep and aggregate no GPU (prep the tasks'
    when it runs a range test, a training run) and their own time limits. Values are arguments, never
    script lines."""
    common = [f"--{key}={value}" for key, value in (("partition", options.partition),
                                                     ("account", options.account)) if value]
    common += [f"--signal=B:USR1@{options.stop_before}", *options.sbatch]
    gres = [f"--gres={options.gres}"] if options.gres != "none" else []
    return {"prep": common + (gres if range_test else []) + [f"--time={options.prep_time}"],
            "task": common + gres + ([f"--time={options.time}"] if options.time else []),
            "aggregate": common + [f"--time={options.aggregate_time}"]}


def sbatch_args(folder: Path, record: dict, role: str, **job) -> list[str]:
    """The arguments of `sbatch --parsable ... job.sh ROLE` for one job of the submission (its log, name,
    resources, array, dependency), as strings."""
    logs = folder / "logs"
    output = {"prep": "prep.%j.out", "task": "task-%a.%A.out",
              "aggregate": f"aggregate-{job.get('e')}.%j.out"}
    args = [f"--job-name=cifarpipe-{folder.name}-{role}", f"--output={logs / output[role]}",
            *record["resources"][role]]
    if "array" in job:
        args.append(f"--array={job['array']}")
    if job.get("after"):
        args += [f"--dependency=afterok:{':'.join(job['after'])}", "--kill-on-invalid-dep=yes"]
    return args + [str(folder / "job.sh"), role] + ([str(job["e"])] if role == "aggregate" else [])


def array_spec(task_ids: list[int], max_parallel: int | None) -> str:
    return ",".join(map(str, task_ids)) + (f"%{max_parallel}" if max_parallel else "")


def planned_jobs(folder: Path, record: dict, task_ids: list[int], aggregates: list[int], prep: bool,
                 ids: dict | None = None, running: dict | None = None) -> list[tuple[str, list[str]]]:
    """[(job, sbatch args)] in submission order; dependencies on the ids in `ids` (job -> id), or on
    placeholders ($PREP, $ARRAY) where they are not known yet, and on the jobs of earlier launches still
    queued or running (`running`: prep, task-I -> SLURM's id)."""
    running = running or {}
    prep_running = running.get("prep")
    ids = ids or {}
    jobs = [("prep", sbatch_args(folder, record, "prep"))] if prep else []
    after_prep = [ids.get("prep", "${PREP}")] if prep else [prep_running] if prep_running else []
    if task_ids:
        spec = array_spec(task_ids, record["max_parallel"])
        jobs.append(("array", sbatch_args(folder, record, "task", array=spec, after=after_prep)))
    array = ids.get("array", "${ARRAY}")
    for e in aggregates:
        mine = [i for i, task in enumerate(record["tasks"]) if task[0] == e]
        after = [f"{array}_{i}" for i in mine if i in task_ids]  # its seeds run now, and those still running
        after += [running[f"task-{i}"] for i in mine if f"task-{i}" in running]
        args = sbatch_args(folder, record, "aggregate", e=e, after=after or after_prep)
        jobs.append((f"aggregate-{e}", args))
    return jobs


def render(record: dict, folder: Path, options) -> str:
    q = shlex.quote
    experiments = record["experiments"]
    lines = [f"NAMES=({' '.join(q(e['name']) for e in experiments)})",
             f"SEEDS=({' '.join(q(','.join(map(str, e['seeds']))) for e in experiments)})",
             f"PREP_STAGES=({' '.join(q(e['prep']) for e in experiments)})",
             f"PREP_RUNS=({' '.join(map(str, record['prep_runs']))})  # one of each group whose prep stages "
             "see the same params"]
    lines += [f"SETS_{i}=({' '.join('-S ' + q(s) for s in e['sets'])})" for i, e in enumerate(experiments)]
    tasks = [f"TASK_EXPERIMENT=({' '.join(str(t[0]) for t in record['tasks'])})",
             f"TASK_SEED=({' '.join(q(str(t[1])) if len(t) > 1 else q('') for t in record['tasks'])})"]
    seeds = {len(e["seeds"]) for e in experiments}
    summary = (f"{len(experiments)} experiment(s), {'/'.join(map(str, sorted(seeds)))} seed(s) each, "
               f"{len(record['tasks'])} array task(s)")
    aggregates = [e for e, x in enumerate(experiments) if len(x["seeds"]) > 1]
    sbatch_lines = []
    for job, args in planned_jobs(folder, record, list(range(len(record["tasks"]))), aggregates, prep=True):
        line = "sbatch --parsable " + " ".join(a if a.startswith("--dependency=") else shlex.quote(a)
                                               for a in args)
        sbatch_lines.append(f"#   {job.upper()}=$({line})" if job in ("prep", "array") else f"#   {line}")
    remote = record["dvc_remote"]
    scratch = q(options.scratch) if options.scratch else '"${CIFARPIPE_SCRATCH:-${TMPDIR:-/tmp}}"'
    return Template(TEMPLATE.read_text()).substitute(
        commit=record["commit"], summary=summary, sbatch_lines="\n".join(sbatch_lines),
        submission=q(str(folder)), git_remote=q(record["git_remote"]), dvc_remote=q(remote["name"]),
        dvc_url=q(remote["url"]), dvc_options=" ".join(q(x) for kv in remote["options"].items() for x in kv),
        scratch=scratch, push_tries=int(record["push"]["tries"]), push_backoff=int(record["push"]["backoff"]),
        stop_before=int(options.stop_before), experiments="\n".join(lines), tasks="\n".join(tasks))


def sbatch(args: list[str], test_only: bool = False) -> str:
    proc = subprocess.run(["sbatch", "--test-only" if test_only else "--parsable", *args],
                          capture_output=True, text=True)
    if proc.returncode:
        said = "; ".join(line.strip() for line in proc.stderr.splitlines() if line.strip())
        raise RuntimeError(f"sbatch {shlex.join(args)}: {said}")
    return proc.stdout.strip().split(";")[0]


def launch(folder: Path, record: dict, task_ids: list[int], aggregates: list[int], prep: bool,
           running: dict | None = None) -> dict:
    """Submit prep (when asked), the array's tasks task_ids and the aggregate jobs `aggregates`, each after
    what it needs; every job is first tried with `sbatch --test-only`, so a flag SLURM refuses submits
    nothing. Returns {job: id} and records it as the submission's next launch."""
    plan_ = planned_jobs(folder, record, task_ids, aggregates, prep, running=running)
    for job, args in plan_:
        try:
            sbatch([a for a in args if not a.startswith(("--dependency", "--kill-on-invalid-dep"))],
                   test_only=True)
        except RuntimeError as error:
            fail(f"SLURM refuses the {job} job, so nothing was submitted: {error}")
    ids: dict[str, str] = {}
    for job, _ in plan_:  # again, with the ids of what each depends on
        args = dict(planned_jobs(folder, record, task_ids, aggregates, prep, ids, running))[job]
        try:
            ids[job] = sbatch(args)
        except RuntimeError as error:
            if ids:
                subprocess.run(["scancel", *ids.values()], capture_output=True)
            fail(f"{error}; cancelled what was submitted before it ({', '.join(ids.values()) or 'nothing'})")
    record.setdefault("launches", []).append({"jobs": ids, "tasks": task_ids, "aggregates": aggregates,
                                              "at": time.strftime("%Y-%m-%dT%H:%M:%S")})
    return ids


def new_folder(base: Path, prefix: str) -> Path:
    """A submission's folder of its own: base/YYYYMMDD-HHMMSS-NAME, -2, -3 ... when taken."""
    stem = f"{time.strftime('%Y%m%d-%H%M%S')}-{prefix}"
    for n in range(1, 100):
        folder = (base / (stem if n == 1 else f"{stem}-{n}")).resolve()
        try:
            folder.mkdir(parents=True)
            return folder
        except FileExistsError:
            continue
    fail(f"no free folder for {stem} in {base}")


def submit(argv: list[str]) -> None:
    """Submit a grid (and its seeds) as a SLURM job array, one clone per job."""
    parser = argparse.ArgumentParser(prog="cifarpipe slurm submit", description=submit.__doc__)
    parser.add_argument("-S", "--set-param", dest="sets", action="append", default=[],
                        help="as dvc exp run --queue: 'optim.lr=0.01,0.02' is a grid; a train.seeds list "
                        "spreads the seeds over tasks")
    parser.add_argument("-n", "--name", help="the experiment's name; a grid's are NAME-1, NAME-2, ... "
                        "(default: slurm-MMDD-HHMMSS)")
    parser.add_argument("--partition")
    parser.add_argument("--account")
    parser.add_argument("--time", help="each task's time limit, e.g. 01:00:00")
    parser.add_argument("--prep-time", default="00:30:00", help="the prep job's (default 00:30:00)")
    parser.add_argument("--aggregate-time", default="00:30:00",
                        help="each aggregate job's (default 00:30:00)")
    parser.add_argument("--stop-before", type=int, default=120, metavar="SECONDS",
                        help="a job stops and saves this long before its time limit (default 120)")
    parser.add_argument("--gres", default="gpu:1", help="per task (default gpu:1; 'none' for CPU nodes); "
                        "prep gets it only for a range test, aggregate jobs never")
    parser.add_argument("--max-parallel", type=int, metavar="N",
                        help="at most N tasks at once (--array=...%%N)")
    parser.add_argument("--setup", type=Path, metavar="FILE",
                        help="lines every job runs first (module load, activating an environment)")
    parser.add_argument("--sbatch", action="append", default=[], metavar="FLAG",
                        help="any other sbatch flag for every job, e.g. --sbatch=--qos=short (repeat for "
                        "more)")
    parser.add_argument("--scratch", help="where jobs clone (default $CIFARPIPE_SCRATCH, else $TMPDIR)")
    parser.add_argument("--git-remote", default="origin")
    parser.add_argument("--push-tries", type=int, default=4, help="tries of each push (default 4)")
    parser.add_argument("--push-backoff", type=int, default=15, metavar="SECONDS",
                        help="the wait before the second try, doubled before each next (default 15)")
    parser.add_argument("--dir", type=Path, default=SUBMISSIONS,
                        help="the submissions' folder, on a file system the nodes share "
                        "(default $CIFARPIPE_SLURM_DIR, else ~/cifarpipe-slurm)")
    parser.add_argument("--dry-run", action="store_true",
                        help="print job.sh and its sbatch lines; submit nothing")
    options = parser.parse_args(argv)
    checked_options(options)
    prefix = checked_name(options.name or f"slurm-{time.strftime('%m%d-%H%M%S')}")
    if options.max_parallel is not None and options.max_parallel < 1:
        fail(f"--max-parallel {options.max_parallel}: at least 1")
    if options.setup is not None and not options.setup.is_file():
        fail(f"--setup {options.setup}: no such file")
    points = grid(options.sets)
    commit, git_url = checked_commit(options.git_remote)
    params_text = git("show", f"{commit}:params.yaml")
    checked_sets(points, params_text)
    experiments, tasks = plan(points, yaml.safe_load(params_text), prefix)
    record = {"commit": commit, "git_remote": git_url, "dvc_remote": dvc_remote(), "experiments": experiments,
              "tasks": tasks, "max_parallel": options.max_parallel,
              "prep_runs": shared_prep(experiments, yaml.safe_load(git("show", f"{commit}:dvc.yaml"))),
              "resources": resources(options, any(e["prep"].startswith("lr_pick") for e in experiments)),
              "push": {"tries": options.push_tries, "backoff": options.push_backoff}}
    aggregates = [e for e, x in enumerate(experiments) if len(x["seeds"]) > 1]
    if options.dry_run:
        folder = (options.dir / f"{time.strftime('%Y%m%d-%H%M%S')}-{prefix}").resolve()
        print(render(record, folder, options), end="")
        return
    if not shutil.which("sbatch"):
        fail("no sbatch on this machine: submit from a SLURM login node (or print the script: --dry-run)")
    folder = new_folder(options.dir, prefix)
    try:
        for sub in ("logs", "status", "checkpoints"):
            (folder / sub).mkdir()
        write_text(folder / "job.sh", render(record, folder, options))
        if options.setup is not None:
            write_text(folder / "setup.sh", options.setup.read_text())
        jobs = launch(folder, record, list(range(len(tasks))), aggregates, prep=True)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    write_json(folder / "submission.json", record)
    print(f"submitted {len(experiments)} experiment(s) as {len(tasks)} array task(s) at {commit[:7]}: "
          + ", ".join(f"{k} {v}" for k, v in jobs.items()))
    print(f"  {folder}/job.sh; logs in {folder}/logs")
    print(f"  follow them: cifarpipe slurm status {folder}")
    print(f"  when they are done: cifarpipe slurm gather {folder}")


# -- what became of it --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SlurmJob:
    """One job, or one array task, as SLURM reports it."""
    state: str
    code: int | None
    node: str
    elapsed: str
    reason: str = ""


@dataclass
class Row:
    """One job of a submission, its latest run: SLURM's view merged with the status file the job wrote."""
    key: str  # prep, task-I, aggregate-E: what cancel, resubmit and push select
    experiment: str
    seeds: str
    what: str  # how gather names it: "task-2 (lr-3)", "task-1 (seeds, seed 1)"
    job: str | None = None  # SLURM's id: 123, or 123_4 for array task 4
    status_file: Path | None = None
    state: str = "UNKNOWN"
    node: str = ""
    gpus: str = ""
    elapsed: str = ""
    code: str = ""
    log: Path | None = None
    clone: str = ""
    reason: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def active(self) -> bool:
        return self.state in ACTIVE

    @property
    def done(self) -> bool:
        return self.state == "COMPLETED"


def parse_array_ids(spec: str) -> list[int]:
    """'3' / '3-5' / '1,3-9:2%4' (the pending rest of an array) -> the task ids it names."""
    ids = []
    for part in spec.strip("[]").split("%")[0].split(","):
        bounds, _, step = part.partition(":")
        first, _, last = bounds.partition("-")
        ids.extend(range(int(first), int(last or first) + 1, int(step or 1)))
    return ids


SACCT_FIELDS = "JobID,State,ExitCode,NodeList,Elapsed"


def from_sacct(job_ids: list[str]) -> dict[str, SlurmJob] | None:
    """{"123" or "123_4": SlurmJob} from sacct; None where accounting does not run."""
    if not shutil.which("sacct"):
        return None
    proc = subprocess.run(["sacct", "-n", "-P", "-X", "-j", ",".join(job_ids), "-o", SACCT_FIELDS],
                          capture_output=True, text=True)
    return None if proc.returncode else parse_sacct(proc.stdout)


def parse_sacct(text: str) -> dict[str, SlurmJob]:
    """sacct -n -P -X -o JobID,State,ExitCode,NodeList,Elapsed, by job id (an array's pending rest, 123_[4-6],
    by each of its tasks)."""
    found = {}
    for line in text.splitlines():
        fields = line.split("|")
        if len(fields) < 5:
            continue
        job_id, state, code, node, elapsed = fields[:5]
        state = state.split()[0]  # "CANCELLED by 0"
        main, _, tasks = job_id.partition("_")
        job = SlurmJob(state, None if state in ACTIVE else int(code.split(":")[0]),
                       "" if node in ("", "None assigned") else node, elapsed)
        for task in parse_array_ids(tasks) if tasks else [None]:
            found[main if task is None else f"{main}_{task}"] = job
    return found


def from_scontrol(job_ids: list[str]) -> dict[str, SlurmJob]:
    """The same from slurmctld's records, which it keeps MinJobAge seconds (300 by default) after a job ends.
    A task of a known array that has no record was cancelled before it started: SLURM keeps none of those."""
    found = {}
    for job_id in job_ids:
        proc = subprocess.run(["scontrol", "--oneliner", "show", "job", job_id], capture_output=True,
                              text=True)
        for line in proc.stdout.splitlines() if proc.returncode == 0 else []:
            fields = dict(re.findall(r"(\w+(?:/\w+)?)=(\S*)", line))
            state = fields.get("JobState", "UNKNOWN")
            code = fields.get("ExitCode", "0:0").split(":")[0]
            node = fields.get("NodeList", "")
            job = SlurmJob(state, None if state in ACTIVE else int(code),
                           "" if node in ("", "(null)") else node, fields.get("RunTime", ""),
                           fields.get("Reason", "None"))
            tasks = fields.get("ArrayTaskId")
            main = fields.get("ArrayJobId") if tasks else fields.get("JobId")
            for task in parse_array_ids(tasks) if tasks else [None]:
                found[main if task is None else f"{main}_{task}"] = job
            if tasks:
                found.setdefault(main, SlurmJob("ARRAY", None, "", ""))  # the array itself: known
    return found


def slurm_view(job_ids: list[str]) -> tuple[dict[str, SlurmJob], str]:
    """({job id: SlurmJob}, where it came from): sacct where accounting runs, else scontrol."""
    if not job_ids or not shutil.which("scontrol"):
        return {}, "the jobs' status files (no SLURM commands here)"
    found = from_sacct(job_ids)
    if found is not None:
        return found, "sacct and the jobs' status files"
    return from_scontrol(job_ids), "scontrol (no accounting: sacct is off) and the jobs' status files"


def read_status(path: Path) -> dict:
    return dict(line.split("\t", 1) for line in path.read_text().splitlines() if "\t" in line)


def job_files(folder: Path, key: str) -> dict[str, Path]:
    """{SLURM id of the run (ARRAY_I for an array task): its status file} of every run of one job."""
    runs = {}
    for path in (folder / "status").glob(f"{key}.*"):
        if not path.name[len(key) + 1:].isdigit():  # not the job's .sha of its experiment, nor a .tmp
            continue
        status = read_status(path)
        task = key.split("-")[1] if key.startswith("task-") else None
        job = f"{status['array_job']}_{task}" if task and status.get("array_job") else status.get("job")
        runs[job] = path
    return runs


def merged(slurm: SlurmJob | None, status: dict | None) -> tuple[str, str]:
    """(state, exit code) of one run from what SLURM says and what the job wrote: SLURM's word while the
    job is queued or running, and for the ends only it can see (CANCELLED, TIMEOUT, OUT_OF_MEMORY,
    NODE_FAIL, PREEMPTED ...); else the job's own, which knows a push failed or a save before the limit."""
    mine = status.get("state") if status else None
    if mine == "FAILED" and status.get("phase") == "push":
        mine = "FAILED (push)"
    code = (status or {}).get("code", "")
    if slurm is not None:
        if slurm.state in ACTIVE and mine in (None, "RUNNING"):
            return slurm.state, ""
        if slurm.state in SLURM_KNOWS_BEST or mine in (None, "RUNNING"):
            ran = status is not None or slurm.node  # a job that never started has no exit code
            return slurm.state, code or ("" if slurm.code is None or not ran else str(slurm.code))
    if mine == "RUNNING":  # no SLURM record, and the job never wrote its end: killed, or its node died
        return "UNKNOWN", ""
    return mine or "UNKNOWN", code


def clock(seconds: int) -> str:
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def duration(slurm_time: str) -> str:
    """SLURM's [D-]HH:MM:SS as H:MM:SS; "" for none."""
    found = re.fullmatch(r"(?:(\d+)-)?(\d+):(\d+):(\d+)", slurm_time or "")
    if not found:
        return ""
    days, hours, minutes, seconds = (int(g or 0) for g in found.groups())
    return clock(((days * 24 + hours) * 60 + minutes) * 60 + seconds)


def elapsed_of(status: dict) -> str:
    """How long a run took (or has taken so far), from its status file."""
    if not status.get("start"):
        return ""
    return clock(int(status.get("end") or time.time()) - int(status["start"]))


def resumed_after(log: Path | None) -> str | None:
    """The epoch a run's training resumed after, as the train stage logged it."""
    if log is None or not log.exists():
        return None
    found = re.findall(r"resuming from \S+ after epoch (\d+)", log.read_text(errors="replace"))
    return found[-1] if found else None


def skeleton(record: dict) -> list[Row]:
    """Every job of the submission, in order: prep, the tasks, the aggregate jobs."""
    rows = [Row("prep", "-", "-", "prep")]
    for i, task in enumerate(record["tasks"]):
        name = record["experiments"][task[0]]["name"]
        seeds = str(task[1]) if len(task) > 1 else ",".join(map(str, record["experiments"][task[0]]["seeds"]))
        rows.append(Row(f"task-{i}", name, seeds,
                        f"task-{i} ({name}{f', seed {task[1]}' if len(task) > 1 else ''})"))
    for e, experiment in enumerate(record["experiments"]):
        if len(experiment["seeds"]) > 1:
            rows.append(Row(f"aggregate-{e}", experiment["name"], ",".join(map(str, experiment["seeds"])),
                            f"aggregate-{e} ({experiment['name']})"))
    return rows


def slurm_id(launch: dict, key: str) -> str | None:
    """SLURM's id of job `key` in one launch, None if that launch did not run it."""
    if key.startswith("task-"):
        task = int(key.split("-")[1])
        return f"{launch['jobs']['array']}_{task}" if task in launch["tasks"] else None
    return launch["jobs"].get(key)


def log_of(folder: Path, key: str, job: str) -> Path:
    if key.startswith("task-"):
        return folder / "logs" / f"{key}.{job.split('_')[0]}.out"
    return folder / "logs" / f"{key}.{job}.out"


def view(folder: Path, record: dict) -> tuple[list[Row], str]:
    """(every job's row, where the states came from)."""
    rows = skeleton(record)
    runs = {row.key: [j for launch in record["launches"] if (j := slurm_id(launch, row.key))] for row in rows}
    latest = {key: ids[-1] for key, ids in runs.items() if ids}
    slurm, source = slurm_view(sorted({job.split("_")[0] for job in latest.values()}))
    for row in rows:
        if row.key not in latest:
            continue
        files = job_files(folder, row.key)
        row.job = latest[row.key]
        row.status_file = files.get(row.job)
        status = read_status(row.status_file) if row.status_file else {}
        ours = slurm.get(row.job)
        if ours is None and not status and "_" in row.job and row.job.split("_")[0] in slurm:
            ours = SlurmJob("CANCELLED", None, "", "", "never started")  # cancelled while pending: no record
        row.state, row.code = merged(ours, status or None)
        row.node = status.get("node") or (ours.node if ours else "")
        row.gpus = status.get("gpus", "")
        running = ours is not None and ours.state in ACTIVE
        row.elapsed = duration(ours.elapsed if running else "") or elapsed_of(status) \
            or duration(ours.elapsed if ours and ours.node else "")
        row.log = log_of(folder, row.key, row.job)
        row.clone = status.get("clone", "")
        row.reason = ours.reason if ours and ours.reason not in ("", "None") else ""
        if row.state == "PENDING" and row.reason:
            row.notes.append(f"waiting: {row.reason}")
        if row.state in ("CANCELLED", "TIMEOUT") and status.get("signal"):
            row.notes.append(f"stopped by {status['signal']} in its {status.get('phase')} phase")
        if row.state == "FAILED" and status.get("phase"):
            row.notes.append(f"failed in its {status['phase']} phase")
        if row.state == "CANCELLED" and not status:
            row.notes.append("never started" + (f" ({row.reason})" if row.reason else ""))
        if epoch := resumed_after(row.log):
            row.notes.append(f"resumed after epoch {epoch}")
        if row.clone:
            row.notes.append(f"clone kept: {row.clone}")
        earlier = [merged(None, read_status(files[job]))[0] if job in files else "did not start"
                   for job in runs[row.key][:-1]]
        if earlier:
            row.notes.append("earlier: " + ", ".join(f"{state} (job {job})" for state, job
                                                     in zip(earlier, runs[row.key][:-1], strict=True)))
    return rows, source


def table(rows: list[Row], folder: Path) -> str:
    """One row per job, its notes below the table (they would not fit a terminal's width beside it)."""
    from tabulate import tabulate

    cells = [[r.key, r.experiment, r.seeds, r.state, r.node or "-", r.gpus or "-", r.elapsed or "-",
              r.code or "-", str(r.log.relative_to(folder)) if r.log and r.log.exists() else "-"]
             for r in rows]
    text = tabulate(cells, headers=["job", "experiment", "seeds", "state", "node", "GPU", "elapsed", "exit",
                                    "log"], tablefmt="simple", disable_numparse=True)
    notes = [f"  {r.key:<{max(len(r.key) for r in rows)}}  {'; '.join(r.notes)}" for r in rows if r.notes]
    return text + ("\n\nnotes:\n" + "\n".join(notes) if notes else "")


def submission_named(argv: list[str], command: str, doc: str,
                     more=None) -> tuple[Path, dict, argparse.Namespace]:
    """(folder, record, options) of `cifarpipe slurm COMMAND [FOLDER] [--dir DIR] ...`."""
    parser = argparse.ArgumentParser(prog=f"cifarpipe slurm {command}", description=doc)
    parser.add_argument("folder", nargs="?", help="the submission's folder (default: the latest)")
    parser.add_argument("--dir", type=Path, default=SUBMISSIONS, help="the submissions' folder")
    if more:
        more(parser)
    options = parser.parse_args(argv)
    folder, record = load(options.folder, options.dir)
    return folder, record, options


def select_argument(parser):
    parser.add_argument("--job", "-j", dest="jobs", action="append", default=[], metavar="JOB",
                        help=f"only these (repeat for more): {SELECTORS}")


def load(folder: str | None, base: Path) -> tuple[Path, dict]:
    if folder is None:
        found = sorted(base.glob("*/submission.json"))
        if not found:
            fail(f"no submission in {base}: name its folder")
        path = found[-1].parent
    else:
        path = Path(folder)
        if not (path / "submission.json").exists():
            fail(f"{path}: no submission.json there; give the folder `cifarpipe slurm submit` printed")
    record = json.loads((path / "submission.json").read_text())
    if "launches" not in record:
        fail(f"{path} was submitted by an older cifarpipe, which kept no launches: read it with that version")
    return path.resolve(), record


def selected(rows: list[Row], selectors: list[str]) -> list[Row]:
    """The rows the selectors name (all without selectors), refused with the names there are."""
    if not selectors:
        return rows
    chosen = []
    for selector in selectors:
        key = f"task-{selector}" if selector.isdigit() else selector
        match = [r for r in rows if r.key == key or (r.experiment == selector and r.key != "prep")]
        if not match:
            fail(f"--job {selector!r}: no such job in this submission; it has "
                 f"{', '.join(r.key for r in rows)} and the experiments "
                 f"{', '.join(dict.fromkeys(r.experiment for r in rows if r.key != 'prep'))}")
        chosen += [r for r in match if r not in chosen]
    return chosen


def status(argv: list[str]) -> None:
    """One row per job of a submission: its state, node, GPU, time, exit code and log."""
    folder, record, _ = submission_named(argv, "status", status.__doc__)
    rows, source = view(folder, record)
    print(folder)
    print(f"commit {record['commit'][:7]}, {len(record['experiments'])} experiment(s), "
          f"{len(record['tasks'])} task(s); states from {source}")
    print(table(rows, folder))


def cancel(argv: list[str]) -> None:
    """Cancel a submission's queued and running jobs, or some of them (--job); what depends on them is
    cancelled by SLURM (--kill-on-invalid-dep)."""
    folder, record, options = submission_named(argv, "cancel", cancel.__doc__, select_argument)
    every = view(folder, record)[0]
    rows = selected(every, options.jobs)
    names = {r.experiment for r in rows if r.key.startswith("task-")}  # their aggregate jobs cannot run
    rows = [r for r in every if r.active and r.job and (r in rows or (r.key.startswith("aggregate-")
                                                                      and r.experiment in names))]
    if not rows:
        print("nothing of it is queued or running: nothing to cancel")
        return
    proc = subprocess.run(["scancel", *(r.job for r in rows)], capture_output=True, text=True)
    if proc.returncode:
        fail(f"scancel {' '.join(r.job for r in rows)}: {proc.stderr.strip()}")
    print(f"cancelled {', '.join(f'{r.key} ({r.job}, {r.state.lower()})' for r in rows)}")


def why(row: Row, folder: Path) -> str:
    """What became of a job that did not complete, and where to look."""
    log = f"see {row.log}" if row.log and row.log.exists() else "no log: it never started"
    where = f" on {row.node}" if row.node else ""
    if row.state == "FAILED (push)":
        return (f"its push failed ({log}); its clone is kept at {row.clone}{where}: push it from there with "
                f"`cifarpipe slurm push {folder} --job {row.key}`")
    if row.state == "TIMEOUT":
        return (f"it reached its time limit{where} and saved what finished; resubmitted with more time "
                f"(--time), its training resumes from its checkpoint ({log})")
    if row.state == "FAILED":
        return f"exit code {row.code}{where}: {log}"
    return f"{row.state.lower()}{where}{''.join(f'; {n}' for n in row.notes)}: {log}"


def landed(rows: list[Row], record: dict) -> list[str]:
    """The experiments whose last job (its aggregate job, or its one task) completed: pushed by name."""
    done = {r.key for r in rows if r.done}
    return [x["name"] for e, x in enumerate(record["experiments"])
            if (f"aggregate-{e}" in done if len(x["seeds"]) > 1 else
                f"task-{record['tasks'].index([e])}" in done)]


def gather(argv: list[str]) -> None:
    """Pull the experiments that landed into this checkout; name what did not, with its log."""
    folder, record, _ = submission_named(argv, "gather", gather.__doc__)
    rows, _ = view(folder, record)
    names = landed(rows, record)
    if names:
        proc = subprocess.run([sys.executable, "-m", "dvc", "exp", "pull", record["git_remote"], *names])
        if proc.returncode:
            fail(f"dvc exp pull {record['git_remote']} {' '.join(names)} failed (above)")
    print(f"{len(names)} of {len(record['experiments'])} experiment(s) landed: {', '.join(names) or 'none'}"
          + ("; see them with: cifarpipe exps" if names else ""))
    failed = [r for r in rows if not r.done and not r.active]
    for row in failed:
        print(f"{row.state} {row.what}: {why(row, folder)}")
    unfinished = [f"{r.key} ({r.state.lower()})" for r in rows if r.active]
    if unfinished:
        print(f"still queued or running: {', '.join(unfinished)}; gather again when they are done "
              f"(cifarpipe slurm status {folder})")
    if failed:
        print(f"resubmit only what did not complete: cifarpipe slurm resubmit {folder}")
        raise SystemExit(1)


def resubmit(argv: list[str]) -> None:
    """Rerun what ended without completing (or the --job given), and the aggregate jobs that depend on it;
    what is still queued or running is left to run, and waited for."""
    def more(parser):
        select_argument(parser)
        parser.add_argument("--time", help="the tasks' time limit from now on, e.g. 02:00:00")

    folder, record, options = submission_named(argv, "resubmit", resubmit.__doc__, more)
    rows = view(folder, record)[0]
    picked = selected(rows, options.jobs)
    busy = [r for r in picked if r.active] if options.jobs else []
    if busy:
        fail(f"{', '.join(f'{r.key} ({r.state.lower()})' for r in busy)} still queued or running: wait, or "
             f"cancel it first: cifarpipe slurm cancel {folder} --job {busy[0].key}")
    chosen = [r for r in picked if not r.done and not r.active]
    if not chosen:
        print("nothing of it ended without completing: nothing to resubmit")
        return
    if options.time is not None:
        checked_text("--time", options.time)
        if not TIME_LIMIT.fullmatch(options.time):
            fail(f"--time {options.time!r}: sbatch takes minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM or "
                 "D-HH:MM:SS")
        record["resources"]["task"] = [a for a in record["resources"]["task"]
                                       if not a.startswith("--time=")] + [f"--time={options.time}"]
    task_ids = sorted(int(r.key[5:]) for r in chosen if r.key.startswith("task-"))
    experiments_rerun = {record["tasks"][i][0] for i in task_ids}
    again = [r for r in rows if r.key.startswith("aggregate-")
             and (int(r.key.split("-")[1]) in experiments_rerun or r in chosen)]
    stale = [r.job for r in again if r.active]  # waits on a seed that failed: it can never run
    if stale:
        subprocess.run(["scancel", *stale], capture_output=True)
    running = {r.key: r.job for r in rows if r.active and not r.key.startswith("aggregate-")}
    prep = not rows[0].done and not rows[0].active  # rows[0] is prep: rerun if it failed, else waited for
    jobs = launch(folder, record, task_ids, [int(r.key.split("-")[1]) for r in again], prep, running)
    write_json(folder / "submission.json", record)
    rerun = ["prep"] * prep + [f"task-{i}" for i in task_ids] + [r.key for r in again]
    print(f"resubmitted {', '.join(rerun)}: " + ", ".join(f"{k} {v}" for k, v in jobs.items()))


# -- pushes -------------------------------------------------------------------------------------------------
def tried(command: list[str], tries: int, backoff: int, cwd=".") -> subprocess.CompletedProcess:
    """Run `command` until it succeeds, `tries` times at most, waiting backoff, 2 x backoff, ... between."""
    for attempt in range(1, tries + 1):
        proc = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
        sys.stdout.write(proc.stdout)
        sys.stdout.write(proc.stderr)
        if proc.returncode == 0 or attempt == tries:
            return proc
        wait = backoff * 2 ** (attempt - 1)
        print(f"{shlex.join(command)} failed (try {attempt} of {tries}); again in {wait} s", flush=True)
        time.sleep(wait)
    raise AssertionError("unreachable")


def remote_sha(git_remote: str, ref: str, cwd=".") -> str | None:
    """The commit the git remote holds at `ref`, None if none; RuntimeError if the remote cannot be read."""
    proc = subprocess.run(["git", "ls-remote", git_remote, ref], cwd=cwd, capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"git ls-remote {git_remote}: {proc.stderr.strip()}")
    return proc.stdout.split()[0] if proc.stdout.strip() else None


def push_experiment(clone: Path, git_remote: str, name: str, baseline: str, tries: int, backoff: int,
                    ours: list[str], sha_file: Path | None = None) -> str | None:
    """Push experiment `name` of a clone to the git remote and check the remote then holds exactly it; an
    experiment of that name already there from another run is refused (DVC's "diverged", which exits 0),
    unless it is one of `ours` (an earlier run of the same job). Returns why it failed, or None."""
    ref = f"refs/exps/{baseline[:2]}/{baseline[2:]}/{name}"
    local = subprocess.run(["git", "rev-parse", "--verify", "-q", ref], cwd=clone, capture_output=True,
                           text=True)
    if local.returncode:
        return f"this clone holds no experiment {name} ({ref})"
    sha = local.stdout.strip()
    if sha_file is not None:
        write_text(sha_file, sha + "\n")
    why = ""
    for attempt in range(1, tries + 1):
        try:
            there = remote_sha(git_remote, ref, clone)
            if there == sha:
                print(f"{git_remote} holds experiment {name} at {sha[:7]}")
                return None
            if there is not None and there not in ours:
                return (f"{git_remote} already holds an experiment {name} from another run ({there[:7]}, "
                        f"this one is {sha[:7]}): DVC calls that diverged; rename it (-n) or replace it "
                        f"with `dvc exp push --force {git_remote} {name}`")
            force = ["--force"] if there else []
            command = [sys.executable, "-m", "dvc", "exp", "push", *force, git_remote, name]
            proc = subprocess.run(command, cwd=clone, capture_output=True, text=True)
            sys.stdout.write(proc.stdout + proc.stderr)
            if remote_sha(git_remote, ref, clone) == sha:
                print(f"pushed experiment {name} ({sha[:7]}) to {git_remote}")
                return None
            said = [line for line in (proc.stderr + proc.stdout).splitlines() if line.startswith("ERROR")]
            why = said[0] if said else "no error, but the remote does not hold it"
        except RuntimeError as error:
            why = str(error)
        if attempt < tries:
            wait = backoff * 2 ** (attempt - 1)
            print(f"the push of {name} failed (try {attempt} of {tries}): {why}; again in {wait} s",
                  flush=True)
            time.sleep(wait)
    return f"the push of {name} to {git_remote} failed {tries} times: {why}"


def push_clone(argv: list[str]) -> None:
    """(run by the jobs, in their clone) Push the run-cache and its outputs to the DVC remote, then the
    experiment, if named, to the git remote; each tried with backoff."""
    parser = argparse.ArgumentParser(prog="cifarpipe slurm push-clone", description=push_clone.__doc__)
    parser.add_argument("--tries", type=int, default=4)
    parser.add_argument("--backoff", type=int, default=15)
    parser.add_argument("--git-remote")
    parser.add_argument("--experiment")
    parser.add_argument("--baseline")
    parser.add_argument("--sha-file", type=Path)
    parser.add_argument("--ours", action="append", default=[])
    options = parser.parse_args(argv)
    proc = tried([sys.executable, "-m", "dvc", "push", "--run-cache"], options.tries, options.backoff)
    if proc.returncode:
        fail(f"dvc push --run-cache failed {options.tries} times")
    if options.experiment:
        error = push_experiment(Path("."), options.git_remote, options.experiment, options.baseline,
                                options.tries, options.backoff, options.ours, options.sha_file)
        if error:
            fail(error)


def push(argv: list[str]) -> None:
    """Push the clones that jobs kept when their push failed (run it where their scratch space is)."""
    folder, record, options = submission_named(argv, "push", push.__doc__, select_argument)
    rows = [r for r in selected(view(folder, record)[0], options.jobs) if r.clone]
    if not rows:
        print("no job of it kept a clone: nothing to push")
        return
    failures = []
    for row in rows:
        clone = Path(row.clone)
        if not clone.is_dir():
            failures.append(f"{row.key}: {clone} is not here: run this on {row.node}, where its scratch is")
            continue
        print(f"{row.key}: pushing from {clone}")
        proc = tried([sys.executable, "-m", "dvc", "push", "--run-cache"], record["push"]["tries"], 1,
                     cwd=clone)
        error = f"dvc push --run-cache failed in {clone}" if proc.returncode else None
        by_name = row.key.startswith("aggregate-") or (row.key.startswith("task-")
                                                        and len(record["tasks"][int(row.key[5:])]) == 1)
        if error is None and by_name:
            ours = [p.read_text().strip() for p in (folder / "status").glob(f"{row.key}.*.sha")]
            error = push_experiment(clone, record["git_remote"], row.experiment, record["commit"],
                                    record["push"]["tries"], 1, ours)
        if error:
            failures.append(f"{row.key}: {error}")
            continue
        status = read_status(row.status_file)
        status.update(state="COMPLETED", code="0", clone="", note="pushed by hand from its kept clone")
        write_text(row.status_file, "".join(f"{k}\t{v}\n" for k, v in status.items()))
        shutil.rmtree(clone)
        print(f"{row.key}: pushed; clone removed; gather it with: cifarpipe slurm gather {folder}")
    if failures:
        fail("; ".join(failures))


COMMANDS = {"submit": submit, "status": status, "cancel": cancel, "gather": gather, "resubmit": resubmit,
            "push": push}
USAGE = """usage: cifarpipe slurm COMMAND [-h] ...

    submit [-S key=values ...] [-n NAME] [--time T] [--dry-run] ...   a grid and its seeds as a job array
    status [FOLDER]                      one row per job: state, node, GPU, elapsed, exit code, log
    cancel [FOLDER] [--job JOB ...]      cancel the submission, or some of its jobs
    gather [FOLDER]                      pull the experiments that landed; name what did not, with its log
    resubmit [FOLDER] [--job JOB ...] [--time T]   rerun what did not complete, and its aggregate jobs
    push [FOLDER] [--job JOB ...]        push the clones jobs kept when their push failed

FOLDER is the submission's folder `submit` printed (default: the latest in $CIFARPIPE_SLURM_DIR or
~/cifarpipe-slurm). `cifarpipe slurm COMMAND -h` tells more; docs/scaling.md tells all."""


def main(argv: list[str]) -> None:
    if argv and argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return
    if argv and argv[0] == "push-clone":  # what the jobs run in their clones
        return push_clone(argv[1:])
    if not argv or argv[0] not in COMMANDS:
        print(USAGE, file=sys.stderr)
        raise SystemExit(2)
    COMMANDS[argv[0]](argv[1:])
