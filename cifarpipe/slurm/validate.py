"""The checks of what `cifarpipe slurm submit` is given, each refusing with one line that names the fix:
control characters, experiment names, time limits, -S sets, the commit and the remotes."""
from __future__ import annotations

import re
import subprocess
import tempfile
from pathlib import Path

from ..core.errors import ToolError

# sbatch --time: minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS
TIME_LIMIT = re.compile(r"\d+(:\d+){0,2}|\d+-\d+(:\d+){0,2}|UNLIMITED|INFINITE")


def git(*args: str, cwd: str | Path = ".") -> str:
    """What `git ARGS` prints; ToolError with git's own message when it fails."""
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    if proc.returncode:
        raise ToolError(f"git {' '.join(args)}: {proc.stderr.strip()}")
    return proc.stdout.strip()


def checked_text(what: str, value: str) -> str:
    """`value`, refused when it holds a newline, a NUL or another control character."""
    bad = next((c for c in value if ord(c) < 32 or ord(c) == 127), None)
    if bad is not None:
        raise ToolError(f"{what} {value!r} holds the control character {bad!r}, which would end a line of "
                        "the job's script or sbatch lines: remove it")
    return value


def checked_time(what: str, value: str | None) -> str | None:
    """A time limit in a form sbatch takes, or None."""
    if value is not None and not TIME_LIMIT.fullmatch(checked_text(what, value)):
        raise ToolError(f"{what} {value!r}: sbatch takes minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM or "
                        "D-HH:MM:SS")
    return value


def checked_name(name: str) -> str:
    """An experiment name DVC can keep as a git ref (refs/exps/../NAME), or refused saying why."""
    checked_text("-n", name)
    valid = subprocess.run(["git", "check-ref-format", f"refs/exps/00/0000/{name}"], capture_output=True)
    if not name or any(c.isspace() for c in name) or "/" in name or valid.returncode:
        raise ToolError(f"-n {name!r} is not a valid experiment name: DVC keeps it as a git ref, so no "
                        "whitespace, no '/', none of ~^:?*[\\, no '..' or '@{', and not starting with '.' or "
                        "ending in '.lock' (e.g. -n lr-sweep)")
    return name


def checked_options(options) -> None:
    """Every text value of the command line checked; the time limits in a form sbatch takes; the counts."""
    for key, value in vars(options).items():
        for text in value if isinstance(value, list) else [value]:
            if isinstance(text, (str, Path)):
                checked_text(f"--{key.replace('_', '-')}", str(text))
    for key in ("time", "prep_time", "aggregate_time"):
        checked_time(f"--{key.replace('_', '-')}", getattr(options, key))
    for key in ("max_parallel", "push_tries"):
        if getattr(options, key) is not None and getattr(options, key) < 1:
            raise ToolError(f"--{key.replace('_', '-')} {getattr(options, key)}: at least 1")
    if options.setup is not None and not options.setup.is_file():
        raise ToolError(f"--setup {options.setup}: no such file; give the file of lines every job runs first")


def hydra_message(error: BaseException) -> str:
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
            raise ToolError(f"-S {override!r}: {hydra_message(error)}") from None
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
                said = hydra_message(error.__cause__ or error)
                raise ToolError(f"-S {' '.join(overrides)}: {said}") from None


def checked_commit(git_remote: str) -> tuple[str, str]:
    """(commit, git remote URL): the current commit, refused unless the remote has it and nothing tracked
    is changed, since the jobs clone the remote at that commit."""
    if git("status", "--porcelain", "--untracked-files=no"):
        raise ToolError("the checkout has uncommitted changes, which the jobs would not see: commit them, "
                        f"then `git push {git_remote}`")
    commit = git("rev-parse", "HEAD")
    url = git("remote", "get-url", git_remote)
    if not git("branch", "-r", "--contains", commit, "--list", f"{git_remote}/*"):
        raise ToolError(f"commit {commit[:7]} is not on {git_remote}, where the jobs clone from: "
                        f"`git push {git_remote} HEAD`")
    return commit, url if "://" in url or ":" in url.split("/")[0] else str(Path(url).resolve())
