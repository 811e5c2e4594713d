"""What became of each job of a submission: SLURM's view (sacct where accounting runs, else scontrol) merged
with the status files the jobs write, into one Row per job that status, gather, resubmit, cancel and push
all read."""
from __future__ import annotations

import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..core.artifacts import write_text
from ..core.errors import ToolError
from .plan import PREP, TASK, JobKey, Submission, array_task

# SLURM's states of a job that has not ended yet
ACTIVE = frozenset({"PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "SUSPENDED", "REQUEUED", "RESIZING",
                    "REQUEUE_HOLD", "REQUEUE_FED", "SIGNALING", "STAGE_OUT", "STOPPED"})
# SLURM's end states that say more than an exit code does; COMPLETED and FAILED defer to the job's own file
SLURM_KNOWS_BEST = frozenset({"CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "PREEMPTED", "BOOT_FAIL",
                              "DEADLINE"})
SACCT_FIELDS = "JobID,State,ExitCode,NodeList,Elapsed"


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
    key: JobKey
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

    @property
    def ended_badly(self) -> bool:
        """Ended without completing: what gather names and resubmit reruns."""
        return not self.done and not self.active


# -- SLURM's view -------------------------------------------------------------------------------------------
def parse_array_ids(spec: str) -> list[int]:
    """'3' / '3-5' / '1,3-9:2%4' (the pending rest of an array) -> the task ids it names."""
    ids = []
    for part in spec.strip("[]").split("%")[0].split(","):
        bounds, _, step = part.partition(":")
        first, _, last = bounds.partition("-")
        ids.extend(range(int(first), int(last or first) + 1, int(step or 1)))
    return ids


def by_task(found: dict[str, SlurmJob], job_id: str, tasks: str | None, job: SlurmJob) -> None:
    """Record `job` under `job_id`, or under each array task `tasks` names (ARRAY_I)."""
    for task in parse_array_ids(tasks) if tasks else [None]:
        found[job_id if task is None else array_task(job_id, task)] = job


def parse_sacct(text: str) -> dict[str, SlurmJob]:
    """sacct -n -P -X -o JobID,State,ExitCode,NodeList,Elapsed, by job id (an array's pending rest, 123_[4-6],
    by each of its tasks)."""
    found: dict[str, SlurmJob] = {}
    for line in text.splitlines():
        fields = line.split("|")
        if len(fields) < 5:
            continue
        job_id, state, code, node, elapsed = fields[:5]
        state = state.split()[0]  # "CANCELLED by 0"
        main, _, tasks = job_id.partition("_")
        by_task(found, main, tasks, SlurmJob(state, None if state in ACTIVE else int(code.split(":")[0]),
                                              "" if node in ("", "None assigned") else node, elapsed))
    return found


def from_sacct(job_ids: list[str]) -> dict[str, SlurmJob] | None:
    """{"123" or "123_4": SlurmJob} from sacct; None where accounting does not run."""
    if not shutil.which("sacct"):
        return None
    proc = subprocess.run(["sacct", "-n", "-P", "-X", "-j", ",".join(job_ids), "-o", SACCT_FIELDS],
                          capture_output=True, text=True)
    return None if proc.returncode else parse_sacct(proc.stdout)


def parse_scontrol(text: str) -> dict[str, SlurmJob]:
    """`scontrol --oneliner show job ID`'s lines by job id, as parse_sacct; an array itself as ARRAY."""
    found: dict[str, SlurmJob] = {}
    for line in text.splitlines():
        fields = dict(re.findall(r"(\w+(?:/\w+)?)=(\S*)", line))
        state = fields.get("JobState", "UNKNOWN")
        node = fields.get("NodeList", "")
        job = SlurmJob(state, None if state in ACTIVE else int(fields.get("ExitCode", "0:0").split(":")[0]),
                       "" if node in ("", "(null)") else node, fields.get("RunTime", ""),
                       fields.get("Reason", "None"))
        tasks = fields.get("ArrayTaskId")
        main = fields.get("ArrayJobId") if tasks else fields.get("JobId")
        by_task(found, main, tasks, job)
        if tasks:
            found.setdefault(main, SlurmJob("ARRAY", None, "", ""))  # the array itself: known
    return found


def from_scontrol(job_ids: list[str]) -> dict[str, SlurmJob]:
    """The same from slurmctld's records, which it keeps MinJobAge seconds (300 by default) after a job ends.
    A task of a known array that has no record was cancelled before it started: SLURM keeps none of those."""
    found: dict[str, SlurmJob] = {}
    for job_id in job_ids:
        proc = subprocess.run(["scontrol", "--oneliner", "show", "job", job_id], capture_output=True,
                              text=True)
        found.update(parse_scontrol(proc.stdout) if proc.returncode == 0 else {})
    return found


def slurm_view(job_ids: list[str]) -> tuple[dict[str, SlurmJob], str]:
    """({job id: SlurmJob}, where it came from): sacct where accounting runs, else scontrol."""
    if not job_ids or not shutil.which("scontrol"):
        return {}, "the jobs' status files (no SLURM commands here)"
    found = from_sacct(job_ids)
    if found is not None:
        return found, "sacct and the jobs' status files"
    return from_scontrol(job_ids), "scontrol (no accounting: sacct is off) and the jobs' status files"


# -- the jobs' own word -------------------------------------------------------------------------------------
def read_status(path: Path) -> dict[str, str]:
    """A status file (job.sh's record): KEY<tab>VALUE lines."""
    return dict(line.split("\t", 1) for line in path.read_text().splitlines() if "\t" in line)


def write_status(path: Path, status: dict[str, str]) -> None:
    write_text(path, "".join(f"{k}\t{v}\n" for k, v in status.items()))


def status_files(folder: Path, key: JobKey) -> dict[str, Path]:
    """{SLURM id of the run (ARRAY_I for an array task): its status file} of every run of one job."""
    runs = {}
    for path in (folder / "status").glob(f"{key}.*"):
        if not path.name[len(str(key)) + 1:].isdigit():  # not the job's .sha of its experiment, nor a .tmp
            continue
        status = read_status(path)
        array = status.get("array_job") if key.role == TASK else None
        runs[array_task(array, key.index) if array else status.get("job")] = path
    return runs


def pushed_shas(folder: Path, key: JobKey) -> list[str]:
    """The commits of the experiment that runs of job `key` pushed (job.sh's STATUS.sha): a rerun may
    replace them on the git remote."""
    return [p.read_text().strip() for p in (folder / "status").glob(f"{key}.*.sha")]


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


# -- one view -----------------------------------------------------------------------------------------------
def skeleton(submission: Submission) -> list[Row]:
    """Every job of the submission, in order: prep, the tasks, the aggregate jobs, none run yet."""
    rows = []
    for key in submission.keys():
        experiment = submission.experiment_of(key)
        if experiment is None:
            rows.append(Row(key, "-", "-", str(key)))
            continue
        seed = submission.tasks[key.index].seed if key.role == TASK else None
        seeds = ",".join(map(str, experiment.seeds)) if seed is None else str(seed)
        what = f"{key} ({experiment.name}{'' if seed is None else f', seed {seed}'})"
        rows.append(Row(key, experiment.name, seeds, what))
    return rows


def notes(row: Row, status: dict, earlier: list[tuple[str, str]]) -> list[str]:
    """What the table has no column for: why it waits or stopped, where it resumed, its kept clone, and
    what its earlier runs (state, SLURM's id) ended in."""
    said = []
    if row.state == "PENDING" and row.reason:
        said.append(f"waiting: {row.reason}")
    if row.state in ("CANCELLED", "TIMEOUT") and status.get("signal"):
        said.append(f"stopped by {status['signal']} in its {status.get('phase')} phase")
    if row.state == "FAILED" and status.get("phase"):
        said.append(f"failed in its {status['phase']} phase")
    if row.state == "CANCELLED" and not status:
        said.append("never started" + (f" ({row.reason})" if row.reason else ""))
    if epoch := resumed_after(row.log):
        said.append(f"resumed after epoch {epoch}")
    if row.clone:
        said.append(f"clone kept: {row.clone}")
    if earlier:
        said.append("earlier: " + ", ".join(f"{state} (job {job})" for state, job in earlier))
    return said


def fill(row: Row, folder: Path, runs: list[str], slurm: dict[str, SlurmJob]) -> None:
    """Row `row` from its runs' SLURM ids (the latest last), SLURM's view and its status files."""
    files = status_files(folder, row.key)
    row.job = runs[-1]
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
    row.log = folder / "logs" / row.key.log(row.job)
    row.clone = status.get("clone", "")
    row.reason = ours.reason if ours and ours.reason not in ("", "None") else ""
    earlier = [(merged(None, read_status(files[job]))[0] if job in files else "did not start", job)
               for job in runs[:-1]]
    row.notes = notes(row, status, earlier)


def view(folder: Path, submission: Submission) -> tuple[list[Row], str]:
    """(every job's row, where the states came from)."""
    rows = skeleton(submission)
    runs = {row.key: [j for launch in submission.launches if (j := launch.slurm_id(row.key))] for row in rows}
    slurm, source = slurm_view(sorted({ids[-1].split("_")[0] for ids in runs.values() if ids}))
    for row in rows:
        if runs[row.key]:
            fill(row, folder, runs[row.key], slurm)
    return rows, source


def table(rows: list[Row], folder: Path) -> str:
    """One row per job, its notes below the table (they would not fit a terminal's width beside it)."""
    from tabulate import tabulate

    cells = [[str(r.key), r.experiment, r.seeds, r.state, r.node or "-", r.gpus or "-", r.elapsed or "-",
              r.code or "-", str(r.log.relative_to(folder)) if r.log and r.log.exists() else "-"]
             for r in rows]
    text = tabulate(cells, headers=["job", "experiment", "seeds", "state", "node", "GPU", "elapsed", "exit",
                                    "log"], tablefmt="simple", disable_numparse=True)
    width = max(len(str(r.key)) for r in rows)
    said = [f"  {str(r.key):<{width}}  {'; '.join(r.notes)}" for r in rows if r.notes]
    return text + ("\n\nnotes:\n" + "\n".join(said) if said else "")


def landed(rows: list[Row], submission: Submission) -> list[str]:
    """The experiments whose last job (its aggregate job, or its one task) completed: pushed by name."""
    done = {r.key for r in rows if r.done}
    return [x.name for e, x in enumerate(submission.experiments) if submission.last_job(e) in done]


def selected(rows: list[Row], selectors: list[str]) -> list[Row]:
    """The rows the selectors name (all without selectors): a job's key, an array task's index, or an
    experiment's name (its tasks and aggregate job); refused with the names there are."""
    if not selectors:
        return rows
    chosen: list[Row] = []
    for selector in selectors:
        key = JobKey.parse(selector)
        match = [r for r in rows if r.key == key or (r.experiment == selector and r.key.role != PREP)]
        if not match:
            raise ToolError(f"--job {selector!r}: no such job in this submission; it has "
                            f"{', '.join(str(r.key) for r in rows)} and the experiments "
                            f"{', '.join(dict.fromkeys(r.experiment for r in rows if r.experiment != '-'))}")
        chosen += [r for r in match if r not in chosen]
    return chosen
