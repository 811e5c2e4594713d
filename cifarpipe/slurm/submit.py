"""How a submission reaches SLURM: each role's resources, each job's sbatch arguments, the job.env that the
static job.sh sources, and the launch (every job tried with `sbatch --test-only` first)."""
from __future__ import annotations

import re
import shlex
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from ..core.errors import ToolError
from .plan import AGGREGATE, ARRAY, PREP, TASK, JobKey, Launch, Submission, array_task

SCRIPT = Path(__file__).with_name("job.sh")
# DVC remote options that are credentials: they stay in the nodes' own DVC or cloud config
SECRET = re.compile(r"password|passphrase|secret|token|account_key|connection_string|key_id", re.I)


def dvc_remote() -> dict:
    """The checkout's default DVC remote: its name, URL (a local path made absolute: the jobs run elsewhere)
    and its options from every config level, its secrets left out."""
    from dvc.repo import Repo

    config = Repo(".").config
    name = config["core"].get("remote")
    if not name:
        raise ToolError("no default DVC remote: every node needs one to share outputs; add it with "
                        "`dvc remote add -d NAME URL` (docs/sharing.md)")
    section = {}
    for level in config.LEVELS:  # system, global, repo, local: the later wins
        section.update(config.load_one(level).get("remote", {}).get(name, {}))
    url = str(section.pop("url"))
    options = {key: str(value).lower() if isinstance(value, bool) else str(value)
               for key, value in section.items() if not SECRET.search(key)}
    return {"name": name, "url": url if "://" in url else str(Path(url).resolve()), "options": options}


def resources(options, range_test: bool) -> dict[str, list[str]]:
    """Each role's sbatch flags: a task gets --gres and --time; prep and aggregate no GPU (prep the tasks'
    when it runs a range test, a training run) and their own time limits. Values are arguments, never
    script lines."""
    common = [f"--{key}={value}" for key, value in (("partition", options.partition),
                                                     ("account", options.account)) if value]
    common += [f"--signal=B:USR1@{options.stop_before}", *options.sbatch]
    gres = [f"--gres={options.gres}"] if options.gres != "none" else []
    return {PREP: common + (gres if range_test else []) + [f"--time={options.prep_time}"],
            TASK: common + gres + ([f"--time={options.time}"] if options.time else []),
            AGGREGATE: common + [f"--time={options.aggregate_time}"]}


def with_time(flags: list[str], time_limit: str) -> list[str]:
    """sbatch flags with their --time replaced."""
    return [f for f in flags if not f.startswith("--time=")] + [f"--time={time_limit}"]


@dataclass(frozen=True)
class Wave:
    """What one launch submits: prep or not, these array tasks, these aggregate jobs; and the jobs of earlier
    launches still queued or running (key: SLURM's id), which they wait for."""
    tasks: list[int]
    aggregates: list[int]
    prep: bool = True
    running: dict[str, str] = field(default_factory=dict)


def sbatch_args(folder: Path, submission: Submission, key: JobKey, after: list[str],
                array: str | None = None) -> list[str]:
    """The arguments of `sbatch --parsable ... job.sh job.env ROLE [E]` for one job (the array's, for the
    task role): its name, log, resources, array and dependency, as strings."""
    args = [f"--job-name=cifarpipe-{folder.name}-{key.role}", f"--output={folder / 'logs' / key.output}",
            *submission.resources[key.role]]
    if array is not None:
        args.append(f"--array={array}")
    if after:
        args += [f"--dependency=afterok:{':'.join(after)}", "--kill-on-invalid-dep=yes"]
    role = [key.role, str(key.index)] if key.role == AGGREGATE else [key.role]
    return [*args, str(folder / "job.sh"), str(folder / "job.env"), *role]


def array_spec(task_ids: list[int], max_parallel: int | None) -> str:
    """sbatch --array: the task ids, and at most max_parallel of them at once."""
    return ",".join(map(str, task_ids)) + (f"%{max_parallel}" if max_parallel else "")


def planned_jobs(folder: Path, submission: Submission, wave: Wave,
                 ids: dict[str, str] | None = None) -> list[tuple[str, list[str]]]:
    """[(job, sbatch args)] in submission order: prep, array, aggregate-E. Each depends on SLURM's ids in
    `ids` (job: id), or on placeholders ($PREP, $ARRAY) where they are not known yet."""
    ids = ids or {}
    prep_running = wave.running.get(str(JobKey(PREP)))
    jobs = [(PREP, sbatch_args(folder, submission, JobKey(PREP), []))] if wave.prep else []
    after_prep = [ids.get(PREP, "${PREP}")] if wave.prep else [prep_running] if prep_running else []
    if wave.tasks:
        spec = array_spec(wave.tasks, submission.max_parallel)
        jobs.append((ARRAY, sbatch_args(folder, submission, JobKey(TASK), after_prep, spec)))
    array = ids.get(ARRAY, "${ARRAY}")
    for e in wave.aggregates:
        mine = submission.tasks_of(e)
        after = [array_task(array, i) for i in mine if i in wave.tasks]  # its seeds that run now
        after += [wave.running[str(JobKey(TASK, i))] for i in mine if str(JobKey(TASK, i)) in wave.running]
        key = JobKey(AGGREGATE, e)
        jobs.append((str(key), sbatch_args(folder, submission, key, after or after_prep)))
    return jobs


def sbatch_lines(folder: Path, submission: Submission) -> list[str]:
    """The sbatch command lines of a first launch, as comments: PREP and ARRAY hold the ids sbatch prints."""
    wave = Wave(list(range(len(submission.tasks))), [e for e, x in enumerate(submission.experiments)
                                                      if x.aggregated])
    lines = []
    for job, args in planned_jobs(folder, submission, wave):
        line = "sbatch --parsable " + " ".join(a if a.startswith("--dependency=") else shlex.quote(a)
                                               for a in args)
        lines.append(f"#   {job.upper()}=$({line})" if job in (PREP, ARRAY) else f"#   {line}")
    return lines


def bash_array(values) -> str:
    return f"({' '.join(shlex.quote(str(v)) for v in values)})"


def render(submission: Submission, folder: Path, scratch: str | None, stop_before: int) -> str:
    """job.env: the submission's values as bash assignments, each quoted with shlex.quote, which job.sh
    sources; its header the sbatch lines that submit it."""
    q, experiments = shlex.quote, submission.experiments
    remote, push = submission.dvc_remote, submission.push
    seeds = "/".join(map(str, sorted({len(x.seeds) for x in experiments})))
    lines = [f"# The values of the cifarpipe slurm submission {folder}, at commit {submission.commit}: "
             f"{len(experiments)} experiment(s), {seeds} seed(s) each, {len(submission.tasks)} array "
             "task(s).",
             "# Sourced by its job.sh (cifarpipe/slurm/job.sh), which `cifarpipe slurm submit` runs so:",
             *sbatch_lines(folder, submission),
             # for shellcheck: assigned for job.sh to read; data, so a $ or a comma in a value is meant
             "# shellcheck shell=bash disable=SC2034,SC2016,SC2054",
             f"SUBMISSION={q(str(folder))}", f"GIT_REMOTE={q(submission.git_remote)}",
             f"COMMIT={q(submission.commit)}", f"DVC_REMOTE={q(remote['name'])}",
             f"DVC_URL={q(remote['url'])}",
             f"DVC_OPTIONS={bash_array(x for kv in remote['options'].items() for x in kv)}",
             f"SCRATCH={q(scratch or '')}", f"PUSH_TRIES={int(push['tries'])}",
             f"PUSH_BACKOFF={int(push['backoff'])}", f"STOP_BEFORE={int(stop_before)}",
             f"NAMES={bash_array(x.name for x in experiments)}",
             f"SEEDS={bash_array(','.join(map(str, x.seeds)) for x in experiments)}",
             f"PREP_STAGES={bash_array(' '.join(x.prep) for x in experiments)}",
             f"PREP_RUNS={bash_array(submission.prep_runs)}"]
    lines += [f"SETS_{e}={bash_array(a for s in x.sets for a in ('-S', s))}"
              for e, x in enumerate(experiments)]
    lines += [f"TASK_EXPERIMENT={bash_array(t.experiment for t in submission.tasks)}",
              f"TASK_SEED={bash_array('' if t.seed is None else t.seed for t in submission.tasks)}",
              f"PREP_KEY={q(str(JobKey(PREP)))}",
              f"TASK_KEYS={bash_array(JobKey(TASK, i) for i in range(len(submission.tasks)))}",
              f"AGGREGATE_KEYS={bash_array(JobKey(AGGREGATE, e) for e in range(len(experiments)))}"]
    return "\n".join(lines) + "\n"


def sbatch(args: list[str], test_only: bool = False) -> str:
    """SLURM's id of the job `sbatch --parsable ARGS` submitted (none with test_only); ToolError with what
    sbatch said when it refuses."""
    proc = subprocess.run(["sbatch", "--test-only" if test_only else "--parsable", *args],
                          capture_output=True, text=True)
    if proc.returncode:
        said = "; ".join(line.strip() for line in proc.stderr.splitlines() if line.strip())
        raise ToolError(f"sbatch {shlex.join(args)}: {said}")
    return proc.stdout.strip().split(";")[0]


def launch(folder: Path, submission: Submission, wave: Wave) -> dict[str, str]:
    """Submit the wave, each job after what it needs; every job is first tried with `sbatch --test-only`, so
    a flag SLURM refuses submits nothing. Returns {job: id} and records it as the submission's next launch."""
    planned = planned_jobs(folder, submission, wave)
    for job, args in planned:
        try:
            sbatch([a for a in args if not a.startswith(("--dependency", "--kill-on-invalid-dep"))],
                   test_only=True)
        except ToolError as error:
            raise ToolError(f"SLURM refuses the {job} job, so nothing was submitted: {error}") from None
    ids: dict[str, str] = {}
    for job, _ in planned:  # again, with the ids of what each depends on
        try:
            ids[job] = sbatch(dict(planned_jobs(folder, submission, wave, ids))[job])
        except ToolError as error:
            if ids:
                subprocess.run(["scancel", *ids.values()], capture_output=True)
            raise ToolError(f"{error}; cancelled what was submitted before it "
                            f"({', '.join(ids.values()) or 'nothing'})") from None
    submission.launches.append(Launch(ids, wave.tasks, wave.aggregates))
    return ids
