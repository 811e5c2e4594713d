"""A real, tiny SLURM cluster on this one host, for tests that submit job arrays.

What runs: one `munged`, one `slurmctld` and three `slurmd` "nodes" (node1..node3), all plain child processes
of the test run (no systemd), all with their config, state, spool, logs and pid files in one temporary
folder. Debian's SLURM is built with `--enable-multiple-slurmd` (its auth_munge plugin carries the
"expected in multiple slurmd mode" replay branch), so the three nodes share NodeHostname=<this host> and
NodeAddr=127.0.0.1 and differ only in their Port=; each slurmd is started as `slurmd -D -N nodeN`, and
the controller is SlurmctldHost=<this host>(127.0.0.1). The daemons are the real binaries, exec'ed
directly, in the foreground: SLURM tells its daemons apart by process name (a node's GRES apply only in
`slurmd`/`slurmctld`), and the fixture knows their pids.

Install (Debian 12 ships SLURM 22.05.8): `apt-get install -y --no-install-recommends slurmctld slurmd
slurm-client munge`. Where `slurmctld`/`slurmd`/`munged` are missing, or the tests do not run as root, the
`slurm_cluster` fixture skips with that command as its reason.

Use::

    from slurm_cluster import run_slurm, job_states, submit, wait_for_jobs, slurm_cluster  # noqa: F401

    def test_grid(slurm_cluster, tmp_path):
        job = submit(slurm_cluster, "--array=0-2", "--gres=gpu:1", "-o", tmp_path / "%a.out", script)
        states = wait_for_jobs(slurm_cluster, [job], timeout=60)[job]
        assert {t.exit_code for t in states.values()} == {0}

`cluster.env` is the environment for client calls (`sbatch`, `squeue`, `sinfo`, `scontrol`, `scancel`): the
test's current `os.environ` (so monkeypatched variables reach the jobs: sbatch exports ALL by default),
without stray SLURM_*/SBATCH_* variables, plus SLURM_CONF=<the cluster's slurm.conf>. `run_slurm` uses it.
Jobs run as root, in the directory they were submitted from (or `--chdir`), on this host.

Exit codes of finished tasks: `job_states(cluster, job_id)` reads `scontrol --oneliner show job ID`; with
MinJobAge=600 slurmctld keeps finished records 10 minutes, each array task with its JobState and
ExitCode=<code>:<signal>. Once purged, it falls back to the job-completion log (JobCompType=jobcomp/filetxt,
`cluster.jobcomp_file`), which gets one line per finished job or task. There is no accounting database
(AccountingStorageType=accounting_storage/none), so `sacct` answers "Slurm accounting storage is disabled".
`sbatch --wait` also works (its exit status is the highest exit code of the tasks), but it polls after 2,
then 8, then 32 more seconds: `wait_for_jobs` (polls every 0.25 s) is the quick way to wait.

Fake GPUs: node1 gets `Gres=gpu:2`, node2 and node3 `Gres=gpu:1`, each GPU its own character device
`<root>/dev/nodeN/nvidiaK` (made with mknod, major 195 as NVIDIA's), listed in gres.conf with AutoDetect=off.
So SLURM sets CUDA_VISIBLE_DEVICES (and SLURM_JOB_GPUS) in each task, as on a real cluster: 0 on node2 and
node3, 0 or 1 on node1, where two tasks run side by side on a GPU each (on a host with one real GPU, all the
"nodes" then share it). Over a regular file instead, slurmd 22.05 starts and runs `--gres=gpu:1` jobs, but
sets no CUDA_VISIBLE_DEVICES. The settings in `slurm.conf`, and why:

- One CPU per GPU (node1 2, node2 and node3 1), RealMemory=100, SlurmdParameters=config_overrides: four
  job slots on a 2-core host (oversubscribed on purpose), so four tasks run at once and a `--gres=gpu:1` task
  has a CPU wherever it has a GPU; config_overrides makes slurmd report the configured, not the real,
  hardware.
- SelectType=select/cons_tres, SelectTypeParameters=CR_Core: GRES-aware scheduling; memory is not a
  consumable resource, so jobs need no --mem.
- ProctrackType=proctrack/linuxproc, TaskPlugin=task/none, JobAcctGatherType=jobacct_gather/none: no cgroups.
  SLURM 22.05 still loads a cgroup plugin in slurmd (it has no CgroupPlugin=disabled; 23.02+ has, and gets
  it): cgroup.conf names cgroup/v1, which sets nothing up until a cgroup-based plugin asks (tried on a
  cgroup-v1 host only; cgroup/v2 in 22.05 expects systemd).
- AuthInfo=socket=<root>/munge/munge.socket: every daemon, client and job talks to the fixture's own munged
  (started with --force and its own key, socket, pid and seed files; in the foreground it logs to
  log/munged.out), never the system's.
- SlurmUser=SlurmdUser=root, MpiDefault=none, SwitchType=switch/none, MailProg=/bin/true: fewest moving parts.
- SchedulerType=sched/backfill with bf_interval=1,sched_interval=2: jobs start within about a second,
  dependent jobs too. Dependencies as SLURM's defaults have them (no DependencyParameters): a job whose
  dependency can never be met (afterok on a failed job) stays PENDING, reason DependencyNeverSatisfied, for
  ever, unless it was submitted with `--kill-on-invalid-dep=yes`, as on most clusters.
- SlurmdTimeout/SlurmctldTimeout=30, MessageTimeout=10, KillWait=2, ReturnToService=2: quick to notice a dead
  node, quick to kill, a node that comes back is usable again.
- MinJobAge=600: finished job records stay visible to scontrol (exit codes, above).
- Free ports, picked at start: two clusters (e.g. two pytest-xdist workers) can run side by side.

Teardown cancels the cluster's jobs, stops the slurmds, slurmctld and then munged by pid (SIGTERM, then
SIGKILL after a few seconds) and kills any process still carrying this cluster's SLURM_CONF (slurmstepd and
job processes). Should the test process end without its teardown, an atexit hook stops the cluster, and if
it is killed outright the kernel SIGTERMs the daemons (PR_SET_PDEATHSIG). The folder is left for pytest to
clean up (its logs help when something failed).
"""
from __future__ import annotations

import atexit
import ctypes
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Self

import pytest

INSTALL_HINT = "apt-get install -y --no-install-recommends slurmctld slurmd slurm-client munge"
BINARIES = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "sinfo", "scontrol", "scancel")
# States a job or task can leave only by being requeued; anything else is still pending/running
TERMINAL_STATES = frozenset({"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "PREEMPTED",
                             "BOOT_FAIL", "DEADLINE", "OUT_OF_MEMORY", "SPECIAL_EXIT", "REVOKED"})
# Variables from an enclosing SLURM job or the user's shell that would steer the clients elsewhere
_FOREIGN_ENV = re.compile(r"^(SLURM_|SBATCH_|SALLOC_|SRUN_|SQUEUE_|SINFO_|SCONTROL_|SCANCEL_|SACCT_)")


class SlurmUnavailable(RuntimeError):
    """SLURM cannot run here (not installed, not root, no mknod): the fixture skips with this message."""


@dataclass(frozen=True)
class TaskState:
    """One job, or one task of an array job, as slurmctld (or the job-completion log) reports it."""
    job_id: int  # the task's own job id (for an array task not yet started: the array's job id)
    array_job_id: int | None  # None for a job that is not an array
    task_id: int | None  # SLURM_ARRAY_TASK_ID; None for a job that is not an array
    state: str  # PENDING, RUNNING, COMPLETED, FAILED, CANCELLED, TIMEOUT, ...
    exit_code: int | None  # the batch script's exit status; None until the task has finished
    signal: int  # the signal that ended it, 0 if none
    node: str | None  # where it ran / runs, None while pending
    reason: str  # why it is pending or failed ("None" otherwise)

    @property
    def finished(self) -> bool:
        return self.state in TERMINAL_STATES


def slurm_version() -> tuple[int, ...]:
    """The installed SLURM's version, e.g. (22, 5, 8), from `slurmd -V` ("slurm-wlm 22.05.8")."""
    out = subprocess.run(["slurmd", "-V"], capture_output=True, text=True, timeout=30, check=False).stdout
    match = re.search(r"(\d+)\.(\d+)\.(\d+)", out)
    if not match:
        raise RuntimeError(f"cannot read the SLURM version from `slurmd -V`: {out!r}")
    return tuple(int(part) for part in match.groups())


def _free_ports(count: int) -> list[int]:
    """`count` distinct TCP ports that are free now (all held open until all are picked)."""
    held = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("", 0))
            held.append(sock)
        return [sock.getsockname()[1] for sock in held]
    finally:
        for sock in held:
            sock.close()


def _parent_death_signal():
    """A preexec_fn that has the kernel SIGTERM the daemon when the thread that started it dies, e.g. a test
    process killed by SIGKILL; None where that cannot be had, or where that thread is not the main one."""
    if threading.current_thread() is not threading.main_thread():
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None
    return lambda: libc.prctl(1, signal.SIGTERM)  # 1: PR_SET_PDEATHSIG


def _tail(path: Path, lines: int) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError as error:
        return f"({error})"
    return "\n".join(text[-lines:]) if text else "(empty)"


class SlurmCluster:
    """munged + slurmctld + `nodes` slurmds under `root`; `start()`, then `stop()` (or use it with `with`)."""

    def __init__(self, root: Path, gpus: tuple[int, ...] = (2, 1, 1), start_timeout: float = 60.0):
        self.root = Path(root).resolve()
        self.nodes = [f"node{i}" for i in range(1, len(gpus) + 1)]
        self.gpus = dict(zip(self.nodes, gpus, strict=True))  # node -> its GPUs, one CPU per GPU (at least 1)
        self.start_timeout = start_timeout
        self.hostname = socket.gethostname().split(".")[0]
        self.conf = self.root / "etc" / "slurm.conf"
        self.log_dir = self.root / "log"
        self.jobcomp_file = self.log_dir / "jobcomp.txt"
        self.munge_socket = self.root / "munge" / "munge.socket"
        self.gpu_files = {node: [self.root / "dev" / node / f"nvidia{i}" for i in range(count)]
                          for node, count in self.gpus.items()}
        self.ctld_port, *self.node_ports = _free_ports(1 + len(self.nodes))
        self._procs: dict[str, subprocess.Popen] = {}  # daemon label -> process, in start order
        self.start_s: float | None = None  # how long start() took
        self.stop_s: float | None = None

    # -- environment and logs ---------------------------------------------------------------------------
    @property
    def env(self) -> dict[str, str]:
        """The environment for client commands and jobs: the current os.environ, cleaned, + SLURM_CONF."""
        env = {key: value for key, value in os.environ.items() if not _FOREIGN_ENV.match(key)}
        env["SLURM_CONF"] = str(self.conf)
        return env

    def environ(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        """`env` with `extra` variables added (they also reach the jobs submitted with it)."""
        return {**self.env, **(extra or {})}

    def log_tail(self, lines: int = 15) -> str:
        """The last lines of every daemon log, and whether each daemon is still alive, for error messages."""
        labels = ["munged", "slurmctld", *(f"slurmd-{node}" for node in self.nodes)]
        parts = []
        for label in labels:
            proc = self._procs.get(label)
            code = None if proc is None else proc.poll()
            status = "not started" if proc is None else "running" if code is None else f"exited {code}"
            parts.append(f"{label}: {status}")
        for label in labels:
            # a daemon's .log, once it opened it; its .out (stdout/stderr, which repeats the log in the
            # foreground) holds what it said before, or why it died
            log, out = self.log_dir / f"{label}.log", self.log_dir / f"{label}.out"
            proc = self._procs.get(label)
            if log.exists():
                parts.append(f"--- {log} ---\n{_tail(log, lines)}")
            if out.exists() and (not log.exists() or (proc is not None and proc.poll() is not None)):
                parts.append(f"--- {out} ---\n{_tail(out, lines)}")
        return "\n".join(parts)

    # -- setup --------------------------------------------------------------------------------------------
    @staticmethod
    def check_available() -> None:
        """Raise SlurmUnavailable (with how to fix it) where this host cannot run the cluster."""
        missing = [name for name in BINARIES if shutil.which(name) is None]
        if missing:
            raise SlurmUnavailable(f"SLURM is not installed (no {', '.join(missing)}); install it with: "
                                   f"{INSTALL_HINT}")
        if os.geteuid() != 0:
            raise SlurmUnavailable("the test SLURM cluster runs its daemons and jobs as root; run as root")

    def _write_files(self) -> None:
        for sub in ("etc", "state", "log", "run"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        munge_dir = self.munge_socket.parent
        munge_dir.mkdir(parents=True, exist_ok=True)
        munge_dir.chmod(0o755)  # munged wants its socket's folder open for execute (clients of any user)
        key = munge_dir / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o600)  # munged refuses a key readable by others
        for node in self.nodes:
            (self.root / "spool" / node).mkdir(parents=True, exist_ok=True)
            for minor, path in enumerate(self.gpu_files[node]):
                path.parent.mkdir(parents=True, exist_ok=True)
                try:
                    os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(195, minor))
                except PermissionError as error:
                    raise SlurmUnavailable(f"cannot mknod fake GPU devices ({error}); needs CAP_MKNOD") \
                        from error
        self.conf.write_text(self.slurm_conf())
        (self.conf.parent / "gres.conf").write_text(self.gres_conf())
        (self.conf.parent / "cgroup.conf").write_text(self.cgroup_conf())

    def slurm_conf(self) -> str:
        root = self.root
        lines = [
            "ClusterName=pytest",
            f"SlurmctldHost={self.hostname}(127.0.0.1)",
            f"SlurmctldPort={self.ctld_port}",
            f"SlurmdPort={self.node_ports[0]}",  # each node overrides it with its own Port= below
            "SlurmUser=root",
            "SlurmdUser=root",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            f"AuthInfo=socket={self.munge_socket}",
            f"StateSaveLocation={root}/state",
            f"SlurmdSpoolDir={root}/spool/%n",
            f"SlurmctldPidFile={root}/run/slurmctld.pid",
            f"SlurmdPidFile={root}/run/slurmd-%n.pid",
            f"SlurmctldLogFile={self.log_dir}/slurmctld.log",
            f"SlurmdLogFile={self.log_dir}/slurmd-%n.log",
            "SlurmctldDebug=info",
            "SlurmdDebug=info",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "JobAcctGatherType=jobacct_gather/none",
            "AccountingStorageType=accounting_storage/none",
            "JobCompType=jobcomp/filetxt",
            f"JobCompLoc={self.jobcomp_file}",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core",
            "SchedulerType=sched/backfill",
            "SchedulerParameters=bf_interval=1,sched_interval=2",
            "MpiDefault=none",
            "SwitchType=switch/none",
            "MailProg=/bin/true",
            "GresTypes=gpu",
            "SlurmdParameters=config_overrides",
            "ReturnToService=2",
            "SlurmdTimeout=30",
            "SlurmctldTimeout=30",
            "MessageTimeout=10",
            "KillWait=2",
            "InactiveLimit=0",
            "MinJobAge=600",
        ]
        for node, port in zip(self.nodes, self.node_ports, strict=True):
            gres = f" Gres=gpu:{self.gpus[node]}" if self.gpus[node] else ""
            lines.append(f"NodeName={node} NodeHostname={self.hostname} NodeAddr=127.0.0.1 Port={port} "
                         f"CPUs={max(1, self.gpus[node])} RealMemory=100{gres} State=UNKNOWN")
        nodes = ",".join(self.nodes)
        lines.append(f"PartitionName=debug Nodes={nodes} Default=YES MaxTime=INFINITE State=UP")
        return "\n".join(lines) + "\n"

    def gres_conf(self) -> str:
        lines = ["AutoDetect=off"]
        lines += [f"NodeName={node} Name=gpu File={path}"
                  for node in self.nodes for path in self.gpu_files[node]]
        return "\n".join(lines) + "\n"

    @staticmethod
    def cgroup_conf() -> str:
        plugin = "disabled" if slurm_version() >= (23, 2) else "cgroup/v1"
        return f"CgroupPlugin={plugin}\nCgroupAutomount=no\n"

    def _spawn(self, label: str, argv: list[str]) -> None:
        # the daemon's own stdout/stderr: what it says before its log opens, and why it died
        with open(self.log_dir / f"{label}.out", "ab") as out:
            # a session of its own: a Ctrl-C in the test's terminal does not reach the daemons mid-teardown
            self._procs[label] = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                                  stderr=subprocess.STDOUT, env=self.env, cwd=self.root,
                                                  start_new_session=True, preexec_fn=_parent_death_signal())

    def _wait(self, what: str, ready, deadline: float) -> None:
        while True:
            dead = [label for label, proc in self._procs.items() if proc.poll() is not None]
            if not dead and ready():
                return
            if dead or time.monotonic() > deadline:
                why = f"{', '.join(dead)} exited" if dead else f"not within {self.start_timeout:.0f} s"
                raise RuntimeError(f"test SLURM cluster: {what}: {why}\n{self.log_tail()}")
            time.sleep(0.2)

    def node_states(self) -> dict[str, str]:
        """{node: state} as sinfo reports it (idle, mixed, allocated, down*, ...); {} if slurmctld is down."""
        result = run_slurm(self, "sinfo", "--noheader", "--Node", "--format=%N %T", timeout=20)
        if result.returncode:
            return {}
        return dict(line.split(maxsplit=1) for line in result.stdout.splitlines() if line.strip())

    def start(self) -> Self:
        self.check_available()
        began = time.monotonic()
        deadline = began + self.start_timeout
        atexit.register(self.stop)  # should the test run end without its teardown
        try:
            self._write_files()
            munge_dir = self.munge_socket.parent
            self._spawn("munged", ["munged", "--foreground", "--force", "--num-threads=10",
                                   f"--socket={self.munge_socket}", f"--key-file={munge_dir}/munge.key",
                                   f"--pid-file={munge_dir}/munged.pid",
                                   f"--seed-file={munge_dir}/munged.seed"])
            self._wait("munged did not open its socket", self.munge_socket.exists, deadline)
            self._spawn("slurmctld", ["slurmctld", "-D", "-f", str(self.conf)])
            for node in self.nodes:
                self._spawn(f"slurmd-{node}", ["slurmd", "-D", "-N", node, "-f", str(self.conf)])

            def all_idle():
                states = self.node_states()
                return len(states) == len(self.nodes) and all(s == "idle" for s in states.values())

            self._wait(f"the {len(self.nodes)} nodes did not come up idle in sinfo", all_idle, deadline)
        except BaseException:
            self.stop()
            raise
        self.start_s = time.monotonic() - began
        return self

    # -- teardown -----------------------------------------------------------------------------------------
    def _cancel_jobs(self, timeout: float = 10.0) -> None:
        if self._procs.get("slurmctld") is None or self._procs["slurmctld"].poll() is not None:
            return
        ids = run_slurm(self, "squeue", "--noheader", "--format=%A", timeout=20).stdout.split()
        if not ids:
            return
        run_slurm(self, "scancel", *sorted(set(ids)), timeout=20)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not run_slurm(self, "squeue", "--noheader", "--format=%A", timeout=20).stdout.split():
                return
            time.sleep(0.25)

    @staticmethod
    def _terminate(procs: list[subprocess.Popen], grace: float = 5.0) -> None:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for proc in procs:
            try:
                proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def _leftover_pids(self) -> list[int]:
        """Processes (slurmstepd, job steps) whose environment still points at this cluster's slurm.conf."""
        marker = f"SLURM_CONF={self.conf}".encode()
        spared = {os.getpid(), os.getppid(), *(proc.pid for proc in self._procs.values())}
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) in spared:
                continue
            try:
                if marker in (entry / "environ").read_bytes().split(b"\0"):
                    pids.append(int(entry.name))
            except OSError:
                continue
        return pids

    def stop(self) -> None:
        """Cancel the jobs, stop the daemons (nodes, controller, munged last), kill what they left."""
        began = time.monotonic()
        try:
            self._cancel_jobs()
        except (OSError, subprocess.SubprocessError):
            pass
        slurmds = [proc for label, proc in self._procs.items() if label.startswith("slurmd-")]
        self._terminate(slurmds)
        self._terminate([proc for label, proc in self._procs.items() if label == "slurmctld"])
        for pid in self._leftover_pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self._terminate([proc for label, proc in self._procs.items() if label == "munged"])
        self._procs.clear()
        atexit.unregister(self.stop)
        self.stop_s = time.monotonic() - began

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


# -- helpers for tests ------------------------------------------------------------------------------------
def run_slurm(cluster: SlurmCluster, *args, env: dict[str, str] | None = None, timeout: float = 60,
              check: bool = False, **kwargs) -> subprocess.CompletedProcess:
    """Run a SLURM client command (`run_slurm(c, "sbatch", "--parsable", script)`) against the cluster:
    text output captured, the cluster's environment plus `env`."""
    return subprocess.run([str(arg) for arg in args], env=cluster.environ(env), capture_output=True,
                          text=True, timeout=timeout, check=check, **kwargs)


def submit(cluster: SlurmCluster, *sbatch_args, env: dict[str, str] | None = None) -> str:
    """`sbatch --parsable ARGS` → the job id (for an array: the array's job id); raises on refusal."""
    result = run_slurm(cluster, "sbatch", "--parsable", *sbatch_args, env=env)
    if result.returncode:
        raise RuntimeError(f"sbatch {' '.join(map(str, sbatch_args))} failed ({result.returncode}): "
                           f"{result.stderr.strip()}")
    return result.stdout.strip().split(";")[0]


def _field(record: str, key: str) -> str | None:
    match = re.search(rf"(?:^|\s){key}=(\S*)", record)
    return match.group(1) if match else None


def _task_ids(spec: str) -> list[int]:
    """'3' / '3-5' / '1,3-9:2%4' (the pending rest of an array) → the task ids it names."""
    ids = []
    for part in spec.split("%")[0].split(","):
        bounds, _, step = part.partition(":")
        first, _, last = bounds.partition("-")
        ids.extend(range(int(first), int(last or first) + 1, int(step or 1)))
    return ids


def _parse_records(records: Iterable[str]) -> dict[int | None, TaskState]:
    tasks: dict[int | None, TaskState] = {}
    for record in records:
        job_id = int(_field(record, "JobId"))
        array = _field(record, "ArrayJobId")
        spec = _field(record, "ArrayTaskId")
        state = (_field(record, "JobState") or "UNKNOWN").split("+")[0]
        code, _, sig = (_field(record, "ExitCode") or "0:0").partition(":")
        node = _field(record, "NodeList")
        common = {"job_id": job_id, "state": state,
                  "exit_code": int(code) if state in TERMINAL_STATES else None, "signal": int(sig or 0),
                  "node": None if node in (None, "", "(null)") else node,
                  "reason": _field(record, "Reason") or "None"}
        if array in (None, "", "0", "4294967294") or spec in (None, "", "4294967294"):
            tasks[None] = TaskState(array_job_id=None, task_id=None, **common)
        else:
            for task in _task_ids(spec):
                tasks[task] = TaskState(array_job_id=int(array), task_id=task, **common)
    return dict(sorted(tasks.items(), key=lambda item: -1 if item[0] is None else item[0]))


def job_states(cluster: SlurmCluster, job_id: int | str) -> dict[int | None, TaskState]:
    """{array task id: TaskState} of a job (key None for a job that is not an array), from slurmctld's
    records (kept MinJobAge=600 s after the end), else from the job-completion log. {} if neither knows it."""
    job_id = str(job_id)
    result = run_slurm(cluster, "scontrol", "--oneliner", "show", "job", job_id)
    if result.returncode == 0 and result.stdout.strip():
        return _parse_records(line for line in result.stdout.splitlines() if line.strip())
    if "Invalid job id" not in result.stderr:  # slurmctld busy or down: not the same as "no such job"
        raise RuntimeError(f"scontrol show job {job_id} failed ({result.returncode}): "
                           f"{result.stderr.strip()}")
    try:
        lines = cluster.jobcomp_file.read_text().splitlines()
    except FileNotFoundError:
        return {}
    return _parse_records(line for line in lines
                          if job_id in (_field(line, "JobId"), _field(line, "ArrayJobId")))


def wait_for_jobs(cluster: SlurmCluster, job_ids: int | str | Iterable[int | str], timeout: float = 120.0,
                  poll_s: float = 0.25) -> dict[str, dict[int | None, TaskState]]:
    """Wait until none of the jobs (and none of their array tasks) is pending or running; return
    {job id: job_states(...)}. TimeoutError, with the queue and the daemon logs, after `timeout` seconds."""
    ids = [str(job_ids)] if isinstance(job_ids, (int, str)) else [str(job) for job in job_ids]
    deadline = time.monotonic() + timeout
    while True:
        try:
            states = {job: job_states(cluster, job) for job in ids}
        except RuntimeError:  # a slow answer from slurmctld: ask again
            states = None
        if states is not None and all(task.finished for tasks in states.values() for task in tasks.values()):
            return states
        if time.monotonic() > deadline:
            queue = run_slurm(cluster, "squeue", "--format=%i %T %R %N").stdout
            raise TimeoutError(f"jobs {', '.join(ids)} still pending/running after {timeout:.0f} s:\n"
                               f"{queue}\n{cluster.log_tail()}")
        time.sleep(poll_s)


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory) -> Iterator[SlurmCluster]:
    """The session's SLURM cluster (3 idle nodes: node1 with two fake GPUs, node2 and node3 with one); skips
    where SLURM cannot run. Each pytest-xdist worker starts its own (own folder, own ports)."""
    try:
        SlurmCluster.check_available()
    except SlurmUnavailable as error:
        pytest.skip(str(error))
    # a short folder: munged's and slurmstepd's unix socket paths must fit in 108 characters
    root = Path(tempfile.mkdtemp(prefix="slurm-", dir=tmp_path_factory.getbasetemp()))
    if len(str(root)) > 60:
        root = Path(tempfile.mkdtemp(prefix="pytest-slurm-"))
    cluster = SlurmCluster(root)
    try:
        cluster.start()
    except SlurmUnavailable as error:
        pytest.skip(str(error))
    try:
        yield cluster
    finally:
        cluster.stop()
