"""The pushes of a job's clone: the run-cache and its outputs to the DVC remote, its experiment to the git
remote, each tried with backoff (cifarpipe/download/retry.py); a job runs them, and so does `push`."""
from __future__ import annotations

import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from ..core.artifacts import write_text
from ..core.errors import ToolError
from ..download.retry import Backoff, GaveUp, StopTrying, retried


@dataclass(frozen=True)
class Remote:
    """Where an experiment goes: the git remote, and the commit the experiment was run from."""
    url: str
    baseline: str

    def ref(self, name: str) -> str:
        """DVC's git ref of experiment `name` of the baseline commit."""
        return f"refs/exps/{self.baseline[:2]}/{self.baseline[2:]}/{name}"


def say(line: str) -> None:
    print(line, flush=True)


def echoed(command: list[str], cwd: str | Path = ".") -> subprocess.CompletedProcess:
    """`command` run in `cwd`, what it printed echoed to stdout."""
    proc = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    sys.stdout.write(proc.stdout + proc.stderr)
    return proc


def push_run_cache(clone: Path, policy: Backoff) -> None:
    """`dvc push --run-cache` in the clone, until it succeeds or the policy's tries run out (ToolError)."""
    command = [sys.executable, "-m", "dvc", "push", "--run-cache"]

    def once() -> None:
        if echoed(command, clone).returncode:
            raise RuntimeError("it exited non-zero (above)")

    try:
        retried(once, policy, retry_on=(RuntimeError,), what=shlex.join(command[2:]), say=say)
    except GaveUp as gave_up:
        raise ToolError(f"dvc push --run-cache failed {gave_up.tries} times in {clone.resolve()}") from None


def remote_sha(git_remote: str, ref: str, cwd: str | Path = ".") -> str | None:
    """The commit the git remote holds at `ref`, None if none; RuntimeError if the remote cannot be read."""
    proc = subprocess.run(["git", "ls-remote", git_remote, ref], cwd=cwd, capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"git ls-remote {git_remote}: {proc.stderr.strip()}")
    return proc.stdout.split()[0] if proc.stdout.strip() else None


def push_once(clone: Path, remote: Remote, name: str, sha: str, ours: list[str]) -> None:
    """One try to make the remote hold experiment `name` at `sha`: RuntimeError saying why it does not;
    StopTrying where another run's experiment of that name is there (DVC's "diverged", which exits 0)."""
    ref = remote.ref(name)
    there = remote_sha(remote.url, ref, clone)
    if there == sha:
        say(f"{remote.url} holds experiment {name} at {sha[:7]}")
        return
    if there is not None and there not in ours:
        raise StopTrying(f"{remote.url} already holds an experiment {name} from another run ({there[:7]}, "
                         f"this one is {sha[:7]}): DVC calls that diverged; rename it (-n) or replace it "
                         f"with `dvc exp push --force {remote.url} {name}`")
    force = ["--force"] if there else []
    proc = echoed([sys.executable, "-m", "dvc", "exp", "push", *force, remote.url, name], clone)
    if remote_sha(remote.url, ref, clone) != sha:
        said = [line for line in (proc.stderr + proc.stdout).splitlines() if line.startswith("ERROR")]
        raise RuntimeError(said[0] if said else "no error, but the remote does not hold it")
    say(f"pushed experiment {name} ({sha[:7]}) to {remote.url}")


def push_experiment(clone: Path, remote: Remote, name: str, policy: Backoff, ours: list[str],
                    sha_file: Path | None = None) -> str | None:
    """Push experiment `name` of a clone to the git remote and check the remote then holds exactly it; an
    experiment of that name already there from another run is refused, unless it is one of `ours` (an
    earlier run of the same job pushed it). Returns why it failed, or None."""
    local = subprocess.run(["git", "rev-parse", "--verify", "-q", remote.ref(name)], cwd=clone,
                           capture_output=True, text=True)
    if local.returncode:
        return f"this clone holds no experiment {name} ({remote.ref(name)})"
    sha = local.stdout.strip()
    if sha_file is not None:
        write_text(sha_file, sha + "\n")
    try:
        retried(lambda: push_once(clone, remote, name, sha, ours), policy, retry_on=(RuntimeError,),
                what=f"the push of {name}", say=say)
    except GaveUp as gave_up:
        if gave_up.final:
            return str(gave_up.error)
        return f"the push of {name} to {remote.url} failed {gave_up.tries} times: {gave_up.error}"
    return None


def push_clone(options) -> None:
    """(run by the jobs, in their clone) Push the run-cache and its outputs to the DVC remote, then the
    experiment, if named, to the git remote; each tried with backoff."""
    policy = Backoff(options.tries, options.backoff)
    push_run_cache(Path("."), policy)
    if options.experiment:
        error = push_experiment(Path("."), Remote(options.git_remote, options.baseline), options.experiment,
                                policy, options.ours, options.sha_file)
        if error:
            raise ToolError(error)
