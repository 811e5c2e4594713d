"""The quick look's wall time, stage by stage, as a user meets it: one `dvc exp run` in a fresh clone.

    python benchmarks/quick_look.py --archive ~/cifar10-proxy/cifar-10-python.tar.gz [--rev REV] [-S K=V ...]

Clones revision --rev of this repository into a temporary folder (or --repo DIR, kept, so a second
experiment reuses what the first cached), points data.url and data.md5 at the archive and runs
`dvc exp run -n NAME $(cifarpipe overrides quick-look.yaml)` with any -S given, on the committed params.yaml.
Each line dvc prints is stamped as it arrives: a stage's seconds run from its "Running stage" line to the next
one (or the end), so they hold the stage's process (its startup and imports included) and what dvc does
around it (hashing, caching its outputs). Beside them, the CPU seconds that dvc and the stage's process
spent over the same span (the cores' work, which other jobs on the machine inflate far less than the wall
time). Then each stage's startup alone: a fresh `python -c "import stages.<stage>"`, the best of three, in
wall and CPU seconds. Prints a Markdown table (with each stage's share of the whole), then one JSON line.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import yaml

ROOT = Path(__file__).resolve().parent.parent
RUNNING = re.compile(r"Running stage '([\w@.-]+)'")


def md5_of(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def environment() -> dict:
    """This interpreter's tools first on PATH, unbuffered output, a git identity (a fresh clone has none)."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "PYTHONUNBUFFERED": "1", "DVC_NO_ANALYTICS": "1", "TQDM_DISABLE": "1"}
    for who in ("AUTHOR", "COMMITTER"):
        env.setdefault(f"GIT_{who}_NAME", "quick-look benchmark")
        env.setdefault(f"GIT_{who}_EMAIL", "bench@cifarpipe.invalid")
    env.pop("PYTHONPATH", None)  # the clone's own code, not this checkout's
    return env


def clone(rev: str, dest: Path, env: dict) -> None:
    subprocess.run(["git", "clone", "-q", "--no-checkout", str(ROOT), str(dest)], check=True, env=env)
    subprocess.run(["git", "checkout", "-q", rev], cwd=dest, check=True, env=env)
    subprocess.run(["git", "checkout", "-q", "-B", "main"], cwd=dest, check=True, env=env)


def cpu_s(process: psutil.Process) -> float:
    """The CPU seconds of `process` and of the children it has waited for (dvc waits for each stage)."""
    t = process.cpu_times()
    return t.user + t.system + t.children_user + t.children_system


def timed_run(repo: Path, args: list[str], env: dict) -> tuple[list[tuple[str, float, float]], float, float,
                                                               str]:
    """([(stage, wall s, CPU s)], total wall s, total CPU s, the output) of `dvc exp run args` in `repo`."""
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "dvc", "exp", "run", *args], cwd=repo, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, bufsize=1)
    watched = psutil.Process(proc.pid)
    marks, output = [], []
    for line in proc.stdout:
        output.append(line)
        found = RUNNING.search(line)
        if found:
            marks.append((found.group(1), time.perf_counter(), cpu_s(watched)))
    last_cpu = cpu_s(watched)  # the stream closes as dvc ends, before it is reaped
    proc.wait()
    ended = time.perf_counter()
    if proc.returncode != 0:
        sys.exit("dvc exp run failed:\n" + "".join(output[-60:]))
    ends = [(at, cpu) for _, at, cpu in marks[1:]] + [(ended, last_cpu)]
    stages = [(name, end - at, end_cpu - cpu) for (name, at, cpu), (end, end_cpu) in zip(marks, ends)]
    return stages, ended - started, last_cpu, "".join(output)


def children_cpu_s() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def startup_s(repo: Path, stage: str, env: dict) -> tuple[float, float]:
    """(wall s, CPU s) of a fresh interpreter importing the stage's script (nothing run): the best of three
    each."""
    module = "stages." + stage.split("@")[0]
    best, best_cpu = float("inf"), float("inf")
    for _ in range(3):
        started, cpu = time.perf_counter(), children_cpu_s()
        subprocess.run([sys.executable, "-c", f"import {module}"], cwd=repo,
                       env={**env, "PYTHONPATH": str(repo)}, check=True)
        best = min(best, time.perf_counter() - started)
        best_cpu = min(best_cpu, children_cpu_s() - cpu)
    return best, best_cpu


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--archive", required=True, type=Path,
                    help="a cifar-10-python.tar.gz in the official layout")
    ap.add_argument("--rev", default="HEAD", help="the revision of this repository to run (default HEAD)")
    ap.add_argument("--repo", type=Path, default=None,
                    help="run in this clone (made on first use, kept); default a temporary one")
    ap.add_argument("--name", default="quick-look", help="the experiment's name")
    ap.add_argument("--params", nargs="+", default=["quick-look.yaml"], help="overrides files, in order")
    ap.add_argument("-S", "--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--no-startup", action="store_true", help="skip timing each stage's imports")
    args = ap.parse_args(argv)

    env = environment()
    with tempfile.TemporaryDirectory() as tmp:
        repo = args.repo or Path(tmp) / "repo"
        if not (repo / ".git").exists():
            clone(args.rev, repo, env)
        # an earlier experiment's -S stay in the workspace's params.yaml: start from the committed one
        subprocess.run(["git", "checkout", "-q", "--", "params.yaml"], cwd=repo, check=True, env=env)
        archive = args.archive.resolve()
        overrides = {}
        for name in args.params:
            overrides.update(yaml.safe_load((repo / name).read_text()) or {})
        sets = [f"{key}={json.dumps(value, separators=(',', ':')) if not isinstance(value, str) else value}"
                for key, value in overrides.items()]
        sets += [f"data.url=file://{archive}", f"data.md5={md5_of(archive)}", *args.sets]
        load = os.getloadavg()[0]
        dvc_args = ["-n", args.name, *[a for s in sets for a in ("-S", s)]]
        stages, total, total_cpu, output = timed_run(repo, dvc_args, env)
        startup = {} if args.no_startup else {name: startup_s(repo, name, env) for name, _, _ in stages}
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=repo, capture_output=True,
                                text=True, env=env).stdout.strip()

    show(commit, args.sets, stages, total, total_cpu, startup)
    found = re.findall(r"test accuracy (\d\.\d+)", output)
    print(json.dumps({"commit": commit, "sets": args.sets, "total_s": round(total, 1),
                      "total_cpu_s": round(total_cpu, 1),
                      "stages": {n: round(s, 1) for n, s, _ in stages},
                      "cpu_s": {n: round(c, 1) for n, _, c in stages},
                      "share": {n: round(s / total, 3) for n, s, _ in stages},
                      "startup_s": {n: round(s[0], 2) for n, s in startup.items()},
                      "startup_cpu_s": {n: round(s[1], 2) for n, s in startup.items()},
                      "test_acc": [float(a) for a in found], "cpu": cpu_line(),
                      "load_before": round(load, 1), "load_after": round(os.getloadavg()[0], 1)}))


def show(commit: str, sets: list[str], stages: list, total: float, total_cpu: float, startup: dict) -> None:
    """The Markdown table: each stage's wall and CPU seconds, its share of the whole, its startup."""
    print(f"\nquick look at {commit}, -S {' -S '.join(sets) or '(none)'}: {total:.1f} s in all")
    print("| stage | wall s | share | CPU s | CPU share | startup s | startup CPU s |\n"
          "| --- | --- | --- | --- | --- | --- | --- |")
    nan = (float("nan"), float("nan"))
    for name, seconds, cpu in stages:
        print(f"| {name} | {seconds:.1f} | {seconds / total:.0%} | {cpu:.1f} | {cpu / total_cpu:.0%} | "
              f"{startup.get(name, nan)[0]:.1f} | {startup.get(name, nan)[1]:.1f} |")
    print(f"| all ({len(stages)} stages and dvc) | {total:.1f} | 100% | {total_cpu:.1f} | 100% | "
          f"{sum(s[0] for s in startup.values()):.1f} | {sum(s[1] for s in startup.values()):.1f} |")


def cpu_line() -> str:
    """The CPU's model name and cores, as /proc/cpuinfo says."""
    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    found = re.search(r"^model name\s*:\s*(.+)$", text, re.M)
    return f"{found.group(1).strip() if found else 'unknown CPU'}, {os.cpu_count()} cores"


if __name__ == "__main__":
    main()
