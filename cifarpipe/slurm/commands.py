"""`cifarpipe slurm submit|status|cancel|gather|resubmit|push`: the command line of the cluster code.

argparse writes every usage and help text from the arguments below; each command fails with a ToolError,
whose one line the `cifarpipe` command prints.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

from ..core.artifacts import write_json, write_text
from ..core.errors import ToolError
from ..core.pipeline import parse_pipeline
from ..download.retry import Backoff
from . import validate
from .plan import AGGREGATE, PREP, SELECTORS, TASK, JobKey, Submission, load, plan, shared_prep
from .push import Remote, push_clone, push_experiment, push_run_cache
from .state import Row, landed, pushed_shas, read_status, selected, table, view, write_status
from .submit import SCRIPT, Wave, dvc_remote, launch, render, resources, with_time


# -- submit -------------------------------------------------------------------------------------------------
def planned(options, prefix: str) -> Submission:
    """The submission the options ask for, every input checked first."""
    points = validate.grid(options.sets)
    commit, git_url = validate.checked_commit(options.git_remote)
    params_text = validate.git("show", f"{commit}:params.yaml")
    validate.checked_sets(points, params_text)
    experiments, tasks = plan(points, yaml.safe_load(params_text), prefix)
    pipeline = parse_pipeline(validate.git("show", f"{commit}:dvc.yaml"))
    range_test = any(x.prep[0] == "lr_pick" for x in experiments)
    push = {"tries": options.push_tries, "backoff": options.push_backoff}
    return Submission(commit, git_url, dvc_remote(), experiments, tasks, shared_prep(experiments, pipeline),
                      resources(options, range_test), push, options.max_parallel)


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
    raise ToolError(f"no free folder for {stem} in {base}: remove old submissions there, or use --dir")


def submitted(folder: Path, submission: Submission, options) -> dict[str, str]:
    """The submission's folder filled (job.sh, job.env, setup.sh) and its jobs launched; the folder is
    removed again when that fails."""
    try:
        for sub in ("logs", "status", "checkpoints"):
            (folder / sub).mkdir()
        write_text(folder / "job.sh", SCRIPT.read_text())
        write_text(folder / "job.env", render(submission, folder, options.scratch, options.stop_before))
        if options.setup is not None:
            write_text(folder / "setup.sh", options.setup.read_text())
        aggregates = [e for e, x in enumerate(submission.experiments) if x.aggregated]
        jobs = launch(folder, submission, Wave(list(range(len(submission.tasks))), aggregates))
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    write_json(folder / "submission.json", submission.to_json())
    return jobs


def submit(options) -> None:
    """Submit a grid (and its seeds) as a SLURM job array, one clone per job."""
    validate.checked_options(options)
    prefix = validate.checked_name(options.name or f"slurm-{time.strftime('%m%d-%H%M%S')}")
    submission = planned(options, prefix)
    if options.dry_run:
        folder = (options.dir / f"{time.strftime('%Y%m%d-%H%M%S')}-{prefix}").resolve()
        print(render(submission, folder, options.scratch, options.stop_before), end="")
        return
    if not shutil.which("sbatch"):
        raise ToolError("no sbatch on this machine: submit from a SLURM login node (or print what it would "
                        "submit: --dry-run)")
    folder = new_folder(options.dir, prefix)
    jobs = submitted(folder, submission, options)
    print(f"submitted {len(submission.experiments)} experiment(s) as {len(submission.tasks)} array task(s) "
          f"at {submission.commit[:7]}: " + ", ".join(f"{k} {v}" for k, v in jobs.items()))
    print(f"  {folder}/job.sh, its values in job.env; logs in {folder}/logs")
    print(f"  follow them: cifarpipe slurm status {folder}")
    print(f"  when they are done: cifarpipe slurm gather {folder}")


# -- what became of it --------------------------------------------------------------------------------------
def opened(options) -> tuple[Path, Submission]:
    """The submission's folder the command names (default: the latest in --dir) and its record."""
    if options.folder is None:
        found = sorted(options.dir.glob("*/submission.json"))
        if not found:
            raise ToolError(f"no submission in {options.dir}: name its folder")
        folder = found[-1].parent
    else:
        folder = Path(options.folder)
    return folder.resolve(), load(folder)


def status(options) -> None:
    """One row per job of a submission: its state, node, GPU, time, exit code and log."""
    folder, submission = opened(options)
    rows, source = view(folder, submission)
    print(folder)
    print(f"commit {submission.commit[:7]}, {len(submission.experiments)} experiment(s), "
          f"{len(submission.tasks)} task(s); states from {source}")
    print(table(rows, folder))


def cancel(options) -> None:
    """Cancel a submission's queued and running jobs, or some of them (--job); what depends on them is
    cancelled by SLURM (--kill-on-invalid-dep)."""
    folder, submission = opened(options)
    every = view(folder, submission)[0]
    rows = selected(every, options.jobs)
    names = {r.experiment for r in rows if r.key.role == TASK}  # their aggregate jobs cannot run
    rows = [r for r in every if r.active and r.job and (r in rows or (r.key.role == AGGREGATE
                                                                      and r.experiment in names))]
    if not rows:
        print("nothing of it is queued or running: nothing to cancel")
        return
    proc = subprocess.run(["scancel", *(r.job for r in rows)], capture_output=True, text=True)
    if proc.returncode:
        raise ToolError(f"scancel {' '.join(r.job for r in rows)}: {proc.stderr.strip()}")
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


def gather(options) -> None:
    """Pull the experiments that landed into this checkout; name what did not, with its log."""
    folder, submission = opened(options)
    rows, _ = view(folder, submission)
    names = landed(rows, submission)
    if names:
        proc = subprocess.run([sys.executable, "-m", "dvc", "exp", "pull", submission.git_remote, *names])
        if proc.returncode:
            raise ToolError(f"dvc exp pull {submission.git_remote} {' '.join(names)} failed (above)")
    print(f"{len(names)} of {len(submission.experiments)} experiment(s) landed: {', '.join(names) or 'none'}"
          + ("; see them with: cifarpipe exps" if names else ""))
    failed = [r for r in rows if r.ended_badly]
    for row in failed:
        print(f"{row.state} {row.what}: {why(row, folder)}")
    unfinished = [f"{r.key} ({r.state.lower()})" for r in rows if r.active]
    if unfinished:
        print(f"still queued or running: {', '.join(unfinished)}; gather again when they are done "
              f"(cifarpipe slurm status {folder})")
    if failed:
        raise ToolError(f"{len(failed)} job(s) did not complete (above): resubmit only those: "
                        f"cifarpipe slurm resubmit {folder}")


def rerun(submission: Submission, rows: list[Row], chosen: list[Row]) -> Wave:
    """What a resubmit of the rows `chosen` launches: their tasks, prep if it failed, and the aggregate jobs
    of their experiments, which wait for those seeds still running too; stale aggregate jobs cancelled."""
    task_ids = sorted(r.key.index for r in chosen if r.key.role == TASK)
    experiments = {submission.tasks[i].experiment for i in task_ids}
    again = [r for r in rows if r.key.role == AGGREGATE and (r.key.index in experiments or r in chosen)]
    stale = [r.job for r in again if r.active]  # waits on a seed that failed: it can never run
    if stale:
        subprocess.run(["scancel", *stale], capture_output=True)
    running = {str(r.key): r.job for r in rows if r.active and r.key.role != AGGREGATE}
    prep = next(r for r in rows if r.key.role == PREP).ended_badly  # else it completed, or is waited for
    return Wave(task_ids, [r.key.index for r in again], prep, running)


def resubmit(options) -> None:
    """Rerun what ended without completing (or the --job given), and the aggregate jobs that depend on it;
    what is still queued or running is left to run, and waited for."""
    validate.checked_time("--time", options.time)
    folder, submission = opened(options)
    rows = view(folder, submission)[0]
    picked = selected(rows, options.jobs)
    busy = [r for r in picked if r.active] if options.jobs else []
    if busy:
        raise ToolError(f"{', '.join(f'{r.key} ({r.state.lower()})' for r in busy)} still queued or running: "
                        f"wait, or cancel it first: cifarpipe slurm cancel {folder} --job {busy[0].key}")
    chosen = [r for r in picked if r.ended_badly]
    if not chosen:
        print("nothing of it ended without completing: nothing to resubmit")
        return
    if options.time is not None:
        submission.resources[TASK] = with_time(submission.resources[TASK], options.time)
    wave = rerun(submission, rows, chosen)
    jobs = launch(folder, submission, wave)
    write_json(folder / "submission.json", submission.to_json())
    again = [JobKey(PREP)] * wave.prep + [JobKey(TASK, i) for i in wave.tasks] \
        + [JobKey(AGGREGATE, e) for e in wave.aggregates]
    print(f"resubmitted {', '.join(map(str, again))}: " + ", ".join(f"{k} {v}" for k, v in jobs.items()))


def pushed_by_hand(folder: Path, submission: Submission, row: Row) -> str | None:
    """Push what one job's kept clone holds, then mark the job COMPLETED and remove the clone; why not."""
    clone = Path(row.clone)
    if not clone.is_dir():
        return f"{clone} is not here: run this on {row.node}, where its scratch is"
    print(f"{row.key}: pushing from {clone}")
    policy = Backoff(submission.push["tries"], 1)
    try:
        push_run_cache(clone, policy)
    except ToolError as error:
        return str(error)
    if submission.pushes_by_name(row.key):
        remote = Remote(submission.git_remote, submission.commit)
        error = push_experiment(clone, remote, row.experiment, policy, pushed_shas(folder, row.key))
        if error:
            return error
    status = read_status(row.status_file)
    status.update(state="COMPLETED", code="0", clone="", note="pushed by hand from its kept clone")
    write_status(row.status_file, status)
    shutil.rmtree(clone)
    print(f"{row.key}: pushed; clone removed; gather it with: cifarpipe slurm gather {folder}")
    return None


def push(options) -> None:
    """Push the clones that jobs kept when their push failed (run it where their scratch space is)."""
    folder, submission = opened(options)
    rows = [r for r in selected(view(folder, submission)[0], options.jobs) if r.clone]
    if not rows:
        print("no job of it kept a clone: nothing to push")
        return
    failures = [f"{row.key}: {error}" for row in rows if (error := pushed_by_hand(folder, submission, row))]
    if failures:
        raise ToolError("; ".join(failures))


# -- the command line ---------------------------------------------------------------------------------------
def submit_arguments(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("-S", "--set-param", dest="sets", action="append", default=[], help="as dvc exp run --queue: "
        "'optim.lr=0.01,0.02' is a grid; a train.seeds list spreads the seeds over tasks")
    add("-n", "--name", help="the experiment's name; a grid's are NAME-1, NAME-2, ... (default: "
        "slurm-MMDD-HHMMSS)")
    add("--partition")
    add("--account")
    add("--time", help="each task's time limit, e.g. 01:00:00")
    add("--prep-time", default="00:30:00", help="the prep job's (default 00:30:00)")
    add("--aggregate-time", default="00:30:00", help="each aggregate job's (default 00:30:00)")
    add("--stop-before", type=int, default=120, metavar="SECONDS",
        help="a job stops and saves this long before its time limit (default 120)")
    add("--gres", default="gpu:1", help="per task (default gpu:1; 'none' for CPU nodes); prep gets it only "
        "for a range test, aggregate jobs never")
    add("--max-parallel", type=int, metavar="N", help="at most N tasks at once (--array=...%%N)")
    add("--setup", type=Path, metavar="FILE",
        help="lines every job runs first (module load, activating an environment)")
    add("--sbatch", action="append", default=[], metavar="FLAG",
        help="any other sbatch flag for every job, e.g. --sbatch=--qos=short (repeat for more)")
    add("--scratch", help="where jobs clone (default $CIFARPIPE_SCRATCH, else $TMPDIR)")
    add("--git-remote", default="origin")
    add("--push-tries", type=int, default=4, help="tries of each push (default 4)")
    add("--push-backoff", type=int, default=15, metavar="SECONDS",
        help="the wait before the second try, doubled before each next (default 15)")
    add("--dir", type=Path, default=submissions(), help="the submissions' folder, on a file system the nodes "
        "share (default $CIFARPIPE_SLURM_DIR, else ~/cifarpipe-slurm)")
    add("--dry-run", action="store_true", help="print job.env, the values job.sh runs with, and the sbatch "
        "lines; submit nothing")


def submissions() -> Path:
    return Path(os.environ.get("CIFARPIPE_SLURM_DIR", Path.home() / "cifarpipe-slurm"))


def folder_arguments(parser: argparse.ArgumentParser, select: bool) -> None:
    parser.add_argument("folder", nargs="?", help="the submission's folder `submit` printed (default: the "
                        "latest in --dir)")
    parser.add_argument("--dir", type=Path, default=submissions(),
                        help="the submissions' folder (default $CIFARPIPE_SLURM_DIR, else ~/cifarpipe-slurm)")
    if select:
        parser.add_argument("--job", "-j", dest="jobs", action="append", default=[], metavar="JOB",
                            help=f"only these (repeat for more): {SELECTORS}")


def push_clone_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tries", type=int, default=4)
    parser.add_argument("--backoff", type=int, default=15)
    parser.add_argument("--git-remote")
    parser.add_argument("--experiment")
    parser.add_argument("--baseline")
    parser.add_argument("--sha-file", type=Path)
    parser.add_argument("--ours", action="append", default=[])


def summary(doc: str) -> str:
    """A command's docstring to its first clause, for the list of commands."""
    return re.split(r"[.;](?:\s|$)", " ".join(doc.split()), maxsplit=1)[0]


def parser() -> argparse.ArgumentParser:
    """`cifarpipe slurm`'s parser: a subcommand per command, each with its function as `run`."""
    top = argparse.ArgumentParser(prog="cifarpipe slurm", description="A grid and its seeds on a SLURM "
                                  "cluster, one clone per job.", epilog="`cifarpipe slurm COMMAND -h` tells "
                                  "more; docs/scaling.md tells all.")
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for run, select in ((submit, None), (status, False), (cancel, True), (gather, False), (resubmit, True),
                        (push, True)):
        sub = commands.add_parser(run.__name__, help=summary(run.__doc__), description=run.__doc__)
        if select is None:
            submit_arguments(sub)
        else:
            folder_arguments(sub, select)
        sub.set_defaults(run=run)
    commands.choices["resubmit"].add_argument("--time",
                                              help="the tasks' time limit from now on, e.g. 02:00:00")
    hidden = commands.add_parser("push-clone", description=push_clone.__doc__)  # what the jobs run
    push_clone_arguments(hidden)
    hidden.set_defaults(run=push_clone)
    return top


def main(argv: list[str]) -> None:
    options = parser().parse_args(argv)
    options.run(options)
