"""A grid and its seeds on a SLURM cluster: `cifarpipe slurm submit | gather | resubmit`.

DVC has no cluster executor, and parallel jobs in one checkout block each other on DVC's lock (DVC issue
#7419), even with `dvc exp run --temp`. So every job works in a clone of its own, the pattern of Exscientia's
rdvc: it clones the git remote at the submitted commit into scratch space, pulls what the DVC remote holds,
runs `dvc exp run` and pushes the experiment, its outputs and the run-cache. Nothing writes to the user's
checkout while the jobs run; `gather` pulls the experiments into it afterwards.

A submission is one rendered script (job.sh, which --dry-run prints) run in three roles:
- prep: the stages every experiment shares (download, stats, range test, corrupted sets), once; each is
  restored from the run-cache when the DVC remote holds it already;
- task, a job array after prep: one experiment, or one seed of one that has several;
- aggregate, one job per experiment with several seeds, after its seeds' tasks: the whole seed list, every
  seed restored from the run-cache, so only what reads them all runs.

Each job writes its exit code, node and GPUs to status/ in the submission's folder (default
~/cifarpipe-slurm/ID, shared with the nodes like the logs), which is what gather and resubmit read.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path
from string import Template

import yaml

from ..core.artifacts import write_json, write_text

TEMPLATE = Path(__file__).with_name("slurm_job.sh")
SUBMISSIONS = Path(os.environ.get("CIFARPIPE_SLURM_DIR", Path.home() / "cifarpipe-slurm"))


def fail(message: str):
    raise SystemExit(f"cifarpipe slurm: {message}")


def git(*args, cwd=".") -> str:
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    if proc.returncode:
        fail(f"git {' '.join(args)}: {proc.stderr.strip()}")
    return proc.stdout.strip()


def grid(sets: list[str]) -> list[list[str]]:
    """The experiments `dvc exp run --queue` would make of these -S sets: DVC's own Hydra sweep, so
    'optim.lr=0.01,0.02' is two experiments."""
    from dvc.utils.hydra import get_hydra_sweeps

    return [sweep.get("params.yaml", []) for sweep in get_hydra_sweeps({"params.yaml": sets})] or [[]]


def plan(sets: list[str], params: dict, prefix: str) -> tuple[list[dict], list[tuple]]:
    """The experiments (name, seeds, -S sets without train.seeds, what prep runs for it) and the array's
    tasks: (experiment,) for an experiment of one seed, (experiment, seed) for each seed of one that has
    several. An experiment with optim.lr set needs no range test, so prep makes only its data."""
    experiments, tasks, points = [], [], grid(sets)
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
        tasks += [(e,)] if len(seeds) == 1 else [(e, s) for s in seeds]
    return experiments, tasks


def dvc_remote_url() -> str:
    """The URL of the checkout's default DVC remote, local paths made absolute (the jobs run elsewhere)."""
    from dvc.repo import Repo

    config = Repo(".").config
    name = config["core"].get("remote")
    if not name:
        fail("no default DVC remote: every node needs one to share outputs; add it with "
             "`dvc remote add -d NAME URL` (docs/sharing.md)")
    url = config["remote"][name]["url"]
    return url if "://" in url else str(Path(url).resolve())


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


def sbatch_lines(options) -> list[str]:
    lines = [f"#SBATCH --gres={options.gres}"] if options.gres != "none" else []
    lines += [f"#SBATCH --{key}={value}" for key, value in (("partition", options.partition),
                                                              ("time", options.time),
                                                              ("account", options.account)) if value]
    return lines + [f"#SBATCH {arg}" for arg in options.sbatch]


def render(experiments, tasks, commit, git_url, dvc_url, folder: Path, options) -> str:
    q = shlex.quote
    described = [" ".join([e["name"], ",".join(map(str, e["seeds"])), e["prep"]]) for e in experiments]
    experiment_lines = ["EXPERIMENTS=(", *(f"  {q(line)}" for line in described), ")"]
    experiment_lines += [f"SETS_{i}=({' '.join('-S ' + q(s) for s in e['sets'])})"
                         for i, e in enumerate(experiments)]
    task_lines = ["TASKS=("] + [f"  {q(' '.join(map(str, t)))}" for t in tasks] + [")"]
    seeds = {len(e["seeds"]) for e in experiments}
    summary = (f"{len(experiments)} experiment(s), {'/'.join(map(str, sorted(seeds)))} seed(s) each, "
               f"{len(tasks)} array task(s)")
    scratch = (q(options.scratch) if options.scratch else '"${CIFARPIPE_SCRATCH:-${TMPDIR:-/tmp}}"')
    return Template(TEMPLATE.read_text()).substitute(
        job_name="cifarpipe", sbatch_lines="\n".join(sbatch_lines(options)), commit=commit, summary=summary,
        last_task=len(tasks) - 1, git_remote=q(git_url), dvc_remote=q(dvc_url), submission=q(str(folder)),
        scratch=scratch, experiments="\n".join(experiment_lines), tasks="\n".join(task_lines))


def sbatch(*args) -> str:
    proc = subprocess.run(["sbatch", "--parsable", *map(str, args)], capture_output=True, text=True)
    if proc.returncode:
        fail(f"sbatch {' '.join(map(str, args))}: {proc.stderr.strip()}")
    return proc.stdout.strip().split(";")[0]


def launch(folder: Path, record: dict, task_ids: list[int], rerun_prep: bool) -> dict:
    """Submit prep (when asked), the array's tasks task_ids and the aggregate jobs of their experiments."""
    script, logs = folder / "job.sh", folder / "logs"
    jobs = {}
    after = []
    if rerun_prep:
        jobs["prep"] = sbatch("--output", logs / "prep.%j.out", script, "prep")
        after = [f"--dependency=afterok:{jobs['prep']}"]
    array = ",".join(map(str, task_ids))
    jobs["array"] = sbatch(f"--array={array}", "--output", logs / "task-%a.%A.out", *after, script, "task")
    for e, experiment in enumerate(record["experiments"]):
        mine = [i for i in task_ids if record["tasks"][i][0] == e]
        if len(experiment["seeds"]) > 1 and mine:
            needs = ":".join(f"{jobs['array']}_{i}" for i in mine)
            jobs[f"aggregate-{e}"] = sbatch(f"--dependency=afterok:{needs}", "--output",
                                            logs / f"aggregate-{e}.%j.out", script, "aggregate", e)
    return jobs


def submit(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="cifarpipe slurm submit", description=submit.__doc__)
    parser.add_argument("-S", "--set-param", dest="sets", action="append", default=[],
                        help="as dvc exp run --queue: 'optim.lr=0.01,0.02' is a grid; a train.seeds list "
                        "spreads the seeds over tasks")
    parser.add_argument("-n", "--name", help="the experiment's name; a grid's are NAME-1, NAME-2, ... "
                        "(default: slurm-MMDD-HHMMSS)")
    parser.add_argument("--partition")
    parser.add_argument("--time", help="each job's time limit, e.g. 01:00:00")
    parser.add_argument("--account")
    parser.add_argument("--gres", default="gpu:1", help="per job (default gpu:1; 'none' for CPU nodes)")
    parser.add_argument("--sbatch", action="append", default=[], metavar="FLAG",
                        help="any other sbatch flag, e.g. --sbatch=--qos=short (repeat for more)")
    parser.add_argument("--scratch", help="where jobs clone (default $CIFARPIPE_SCRATCH, else $TMPDIR)")
    parser.add_argument("--git-remote", default="origin")
    parser.add_argument("--dir", type=Path, default=SUBMISSIONS,
                        help="the submissions' folder, on a file system the nodes share "
                        "(default $CIFARPIPE_SLURM_DIR, else ~/cifarpipe-slurm)")
    parser.add_argument("--dry-run", action="store_true", help="print job.sh and submit nothing")
    options = parser.parse_args(argv)
    commit, git_url = checked_commit(options.git_remote)
    dvc_url = dvc_remote_url()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    prefix = options.name or f"slurm-{stamp[4:]}"
    experiments, tasks = plan(options.sets, yaml.safe_load(git("show", f"{commit}:params.yaml")), prefix)
    folder = (options.dir / f"{stamp}-{commit[:7]}").resolve()
    script = render(experiments, tasks, commit, git_url, dvc_url, folder, options)
    if options.dry_run:
        print(script, end="")
        return
    if not shutil.which("sbatch"):
        fail("no sbatch on this machine: submit from a SLURM login node (or print the script: --dry-run)")
    for sub in ("logs", "status"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    write_text(folder / "job.sh", script)
    record = {"commit": commit, "git_remote": git_url, "dvc_remote": dvc_url, "experiments": experiments,
              "tasks": tasks}
    record["jobs"] = launch(folder, record, list(range(len(tasks))), rerun_prep=True)
    write_json(folder / "submission.json", record)
    print(f"submitted {len(experiments)} experiment(s) as {len(tasks)} array task(s) at {commit[:7]}: "
          f"prep {record['jobs']['prep']}, array {record['jobs']['array']}"
          + "".join(f", {k} {v}" for k, v in record["jobs"].items() if k.startswith("aggregate")))
    print(f"  {folder}/job.sh; logs in {folder}/logs")
    print(f"  when they are done: cifarpipe slurm gather {folder}")


def job_status(folder: Path, job: str) -> dict | None:
    path = folder / "status" / job
    if not path.exists():
        return None
    code, node, gpus, job_id = path.read_text().rstrip("\n").split("\t")
    return {"code": int(code), "node": node, "gpus": gpus, "job_id": job_id}


def succeeded(folder: Path, job: str) -> bool:
    status = job_status(folder, job)
    return status is not None and status["code"] == 0


def still_queued(jobs: dict) -> bool:
    if not shutil.which("squeue"):
        return False
    ids = ",".join(v for v in jobs.values())
    proc = subprocess.run(["squeue", "-h", "-j", ids, "-o", "%i"], capture_output=True, text=True)
    return bool(proc.stdout.strip())


def outcome(folder: Path, record: dict) -> tuple[list[str], list[tuple[str, str]]]:
    """(the experiments that landed, [(what failed, why)]) from the jobs' status files."""
    landed, failed = [], []
    logs = folder / "logs"
    for i, task in enumerate(record["tasks"]):
        status = job_status(folder, f"task-{i}")
        name = record["experiments"][task[0]]["name"] + (f", seed {task[1]}" if len(task) > 1 else "")
        if status is None:
            failed.append((f"task {i} ({name})", "did not run: prep failed or it was cancelled"))
        elif status["code"]:
            log = logs / f"task-{i}.{status['job_id'].split('_')[0]}.out"
            failed.append((f"task {i} ({name})",
                           f"exit code {status['code']} on {status['node']}: see {log}"))
        elif len(task) == 1:
            landed.append(record["experiments"][task[0]]["name"])
    for e, experiment in enumerate(record["experiments"]):
        if len(experiment["seeds"]) > 1:
            status = job_status(folder, f"aggregate-{e}")
            if status and status["code"] == 0:
                landed.append(experiment["name"])
            else:
                why = ("did not run: a seed's task failed" if status is None else
                       f"exit code {status['code']}: see {logs}/aggregate-{e}.{status['job_id']}.out")
                failed.append((f"aggregate {e} ({experiment['name']})", why))
    return landed, failed


def submission_named(argv: list[str], command: str) -> tuple[Path, dict]:
    """(folder, record) of the submission `cifarpipe slurm gather|resubmit [FOLDER] [--dir DIR]` names."""
    parser = argparse.ArgumentParser(prog=f"cifarpipe slurm {command}")
    parser.add_argument("folder", nargs="?", help="the submission's folder (default: the latest)")
    parser.add_argument("--dir", type=Path, default=SUBMISSIONS, help="the submissions' folder")
    options = parser.parse_args(argv)
    return load(options.folder, options.dir)


def load(folder: str | None, base: Path) -> tuple[Path, dict]:
    if folder is None:
        found = sorted(base.glob("*/submission.json"))
        if not found:
            fail(f"no submission in {base}: name its folder")
        return found[-1].parent, json.loads(found[-1].read_text())
    path = Path(folder)
    if not (path / "submission.json").exists():
        fail(f"{path}: no submission.json there; give the folder `cifarpipe slurm submit` printed")
    return path.resolve(), json.loads((path / "submission.json").read_text())


def gather(argv: list[str]) -> None:
    folder, record = submission_named(argv, "gather")
    if still_queued(record["jobs"]):
        print("some jobs are still queued or running (squeue); gathering what has landed")
    landed, failed = outcome(folder, record)
    if landed:
        proc = subprocess.run([sys.executable, "-m", "dvc", "exp", "pull", record["git_remote"], *landed])
        if proc.returncode:
            fail(f"dvc exp pull {record['git_remote']} {' '.join(landed)} failed (above)")
    print(f"{len(landed)} of {len(record['experiments'])} experiment(s) landed: {', '.join(landed) or 'none'}"
          + ("; see them with: cifarpipe exps" if landed else ""))
    for what, why in failed:
        print(f"FAILED {what}: {why}")
    if failed:
        print(f"resubmit only what failed: cifarpipe slurm resubmit {folder}")
        raise SystemExit(1)


def resubmit(argv: list[str]) -> None:
    folder, record = submission_named(argv, "resubmit")
    if still_queued(record["jobs"]):
        fail("jobs of this submission are still queued or running: wait, or scancel them first")
    redo = [i for i in range(len(record["tasks"])) if not succeeded(folder, f"task-{i}")]
    redo_aggregate = [e for e, x in enumerate(record["experiments"]) if len(x["seeds"]) > 1
                      and not succeeded(folder, f"aggregate-{e}")]
    if not redo and not redo_aggregate:
        print("nothing failed: nothing to resubmit")
        return
    # an aggregate job that failed on its own reruns after its seeds' tasks, which are cached
    for e in redo_aggregate:
        redo += [i for i, t in enumerate(record["tasks"]) if t[0] == e and i not in redo]
    prep = not succeeded(folder, "prep")
    for i in redo:
        (folder / "status" / f"task-{i}").unlink(missing_ok=True)
        (folder / "status" / f"aggregate-{record['tasks'][i][0]}").unlink(missing_ok=True)
    record["jobs"] = launch(folder, record, sorted(redo), rerun_prep=prep)
    write_json(folder / "submission.json", record)
    print(f"resubmitted {len(redo)} task(s) ({', '.join(map(str, sorted(redo)))}): "
          + ", ".join(f"{k} {v}" for k, v in record["jobs"].items()))


def main(argv: list[str]) -> None:
    commands = {"submit": submit, "gather": gather, "resubmit": resubmit}
    if not argv or argv[0] not in commands:
        print("usage: cifarpipe slurm submit [-S key=values ...] [--dry-run] ... | gather [FOLDER] | "
              "resubmit [FOLDER]", file=sys.stderr)
        raise SystemExit(2)
    commands[argv[0]](argv[1:])
