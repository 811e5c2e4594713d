"""`cifarpipe slurm` without a cluster, as submitit tests its own: the plan of a grid, the jobs' keys and
SLURM's array ids, sbatch's arguments, the job.env the static job.sh sources (read back by bash, passed by
shellcheck), SLURM's and the jobs' word merged, the help, and the pushes against a real git remote."""
import json
import re
import shlex
import shutil
import subprocess
import sys
from argparse import Namespace
from pathlib import Path

import pytest
import yaml

from cifarpipe.core.errors import ToolError
from cifarpipe.core.pipeline import read_pipeline
from cifarpipe.download.retry import Backoff
from cifarpipe.slurm import plan, state, submit, validate
from cifarpipe.slurm.plan import AGGREGATE, PREP, TASK, Experiment, JobKey, Launch, Submission, Task
from cifarpipe.slurm.push import Remote, push_experiment, remote_sha
from conftest import PARAMS_YAML, ROOT, dvc, run, tool_env

PARAMS = yaml.safe_load(PARAMS_YAML.read_text())
needs_shellcheck = pytest.mark.skipif(not shutil.which("shellcheck"), reason="shellcheck is not installed: "
                                      "apt-get install --no-install-recommends shellcheck")


def test_help_is_argparses_exits_0_and_writes_nothing(tmp_path):
    env = {**tool_env(), "CIFARPIPE_SLURM_DIR": str(tmp_path / "submissions")}
    commands = ["submit", "status", "cancel", "gather", "resubmit", "push"]
    for args in (["--help"], *([c, "--help"] for c in commands)):
        proc = subprocess.run([sys.executable, "-m", "cifarpipe.tools.cli", "slurm", *args], cwd=tmp_path,
                              capture_output=True, text=True, env=env)
        assert proc.returncode == 0 and proc.stderr == "", (args, proc.stderr)
        assert proc.stdout.startswith(f"usage: cifarpipe slurm {' '.join(args[:-1])}".rstrip()), proc.stdout
    listed = subprocess.run([sys.executable, "-m", "cifarpipe.tools.cli", "slurm", "--help"], cwd=tmp_path,
                            capture_output=True, text=True, env=env).stdout
    assert all(f"\n    {c} " in listed for c in commands) and "push-clone" not in listed
    assert list(tmp_path.iterdir()) == []  # no folder of submissions, nothing
    for args in ([], ["nope"]):
        proc = subprocess.run([sys.executable, "-m", "cifarpipe.tools.cli", "slurm", *args], cwd=tmp_path,
                              capture_output=True, text=True, env=env)
        assert proc.returncode == 2 and proc.stderr.startswith("usage: cifarpipe slurm"), proc.stderr


# -- plan ---------------------------------------------------------------------------------------------------
def test_a_job_key_is_spelled_and_read_in_one_place():
    keys = [JobKey(PREP), JobKey(TASK, 3), JobKey(AGGREGATE, 0)]
    assert [str(k) for k in keys] == ["prep", "task-3", "aggregate-0"]
    assert [JobKey.parse(str(k)) for k in keys] == keys and JobKey.parse("3") == JobKey(TASK, 3)
    assert [JobKey.parse(t) for t in ("task", "task-x", "prep-1", "aggregate-", "lr-3", "")] == [None] * 6
    assert JobKey(TASK, 3).log("41_3") == "task-3.41.out" and JobKey(PREP).log("40") == "prep.40.out"
    assert [JobKey(TASK).output, JobKey(AGGREGATE, 1).output] == ["task-%a.%A.out", "aggregate-1.%j.out"]


def test_a_grid_is_its_experiments_and_its_seeds_the_arrays_tasks():
    points = validate.grid(["optim.lr=0.01,0.02", "train.seeds=[0,1]"])
    assert points == [["optim.lr=0.01", "train.seeds=[0,1]"], ["optim.lr=0.02", "train.seeds=[0,1]"]]
    experiments, tasks = plan.plan(points + [["optim.lr=0.03", "train.seeds=[7]"]], PARAMS, "lr")
    assert [(x.name, x.seeds, x.sets, x.prep) for x in experiments] == [
        ("lr-1", [0, 1], ["optim.lr=0.01"], ("stats", "corrupt")),
        ("lr-2", [0, 1], ["optim.lr=0.02"], ("stats", "corrupt")),
        ("lr-3", [7], ["optim.lr=0.03"], ("stats", "corrupt"))]
    assert tasks == [Task(0, 0), Task(0, 1), Task(1, 0), Task(1, 1), Task(2)]
    (one,), (task,) = plan.plan([[]], PARAMS, "solo")
    assert one.name == "solo" and one.prep == ("lr_pick", "corrupt") and task == Task(0)  # the range test
    assert not one.aggregated and experiments[0].aggregated
    with pytest.raises(ToolError, match=r"takes a list of integers, e.g. 'train.seeds=\[0,1,2\]'"):
        plan.plan([["train.seeds=[0,x]"]], PARAMS, "bad")


def test_prep_runs_once_for_each_group_whose_prep_stages_see_the_same_params():
    """dvc.yaml says which params the prep stages (and the stages they read) see: optim.lr is read by none
    of stats and corrupt, data.train_subset by stats; without optim.lr, lr_pick's range test reads optim."""
    pipeline = read_pipeline(ROOT / "dvc.yaml")
    lr, _ = plan.plan(validate.grid(["optim.lr=0.01,0.02,0.03"]), PARAMS, "lr")
    assert plan.shared_prep(lr, pipeline) == [0]
    subsets, _ = plan.plan(validate.grid(["optim.lr=0.01", "data.train_subset=100,200"]), PARAMS, "s")
    assert plan.shared_prep(subsets, pipeline) == [0, 1]
    wd, _ = plan.plan(validate.grid(["optim.weight_decay=0.001,0.002"]), PARAMS, "wd")  # range test each
    assert plan.shared_prep(wd, pipeline) == [0, 1]
    assert set(pipeline.upstream(["lr_pick"])) == {"lr_pick", "lr_find", "download", "stats"}


def submission(tasks=((0, 0), (0, 1), (1,)), max_parallel=None) -> Submission:
    experiments = [Experiment("g-1", [0, 1], ["optim.lr=0.01"], ("stats", "corrupt")),
                   Experiment("g-2", [0], ["optim.lr=0.02"], ("stats", "corrupt"))]
    remote = {"name": "store", "url": "/srv/store", "options": {}}
    flags = {PREP: ["--time=30"], TASK: ["--gres=gpu:1"], AGGREGATE: []}
    return Submission("ab" + "0" * 38, "/srv/origin.git", remote, experiments, [Task(*t) for t in tasks], [0],
                      flags, {"tries": 4, "backoff": 15}, max_parallel)


def test_a_submission_keeps_the_json_shape_earlier_versions_wrote():
    record = submission()
    record.launches.append(Launch({"prep": "40", "array": "41", "aggregate-0": "42"}, [0, 1, 2], [0]))
    data = json.loads(json.dumps(record.to_json()))
    assert data["tasks"] == [[0, 0], [0, 1], [1]] and data["experiments"][0]["prep"] == "stats corrupt"
    assert Submission.from_json(data) == record
    assert record.keys() == [JobKey(PREP), JobKey(TASK, 0), JobKey(TASK, 1), JobKey(TASK, 2),
                             JobKey(AGGREGATE, 0)]
    assert [record.last_job(e) for e in (0, 1)] == [JobKey(AGGREGATE, 0), JobKey(TASK, 2)]
    assert [record.pushes_by_name(k) for k in record.keys()] == [False, False, False, True, True]
    launch = record.launches[0]
    assert [launch.slurm_id(k) for k in record.keys()] == ["40", "41_0", "41_1", "41_2", "42"]
    assert Launch({"array": "50"}, [1], []).slurm_id(JobKey(TASK, 0)) is None


# -- submit: array ids, sbatch arguments, job.env -----------------------------------------------------------
def test_array_ids_are_read_and_written_as_slurm_does():
    assert state.parse_array_ids("3") == [3] and state.parse_array_ids("[2-4]") == [2, 3, 4]
    assert state.parse_array_ids("1,3-9:2%4") == [1, 3, 5, 7, 9]
    assert submit.array_spec([0, 2, 3], 2) == "0,2,3%2" and submit.array_spec([1], None) == "1"
    assert plan.array_task("41", 2) == "41_2"


def test_each_job_waits_for_what_it_needs(tmp_path):
    record, folder = submission(), tmp_path / "20260101-000000-g"
    jobs = dict(submit.planned_jobs(folder, record, submit.Wave([0, 1, 2], [0])))
    assert list(jobs) == ["prep", "array", "aggregate-0"]
    assert jobs["prep"] == [f"--job-name=cifarpipe-{folder.name}-prep", f"--output={folder}/logs/prep.%j.out",
                            "--time=30", f"{folder}/job.sh", f"{folder}/job.env", "prep"]
    assert jobs["array"][-4:] == ["--kill-on-invalid-dep=yes", f"{folder}/job.sh", f"{folder}/job.env",
                                  "task"]
    assert "--array=0,1,2" in jobs["array"] and "--dependency=afterok:${PREP}" in jobs["array"]
    assert f"--output={folder}/logs/task-%a.%A.out" in jobs["array"]
    assert "--dependency=afterok:${ARRAY}_0:${ARRAY}_1" in jobs["aggregate-0"]
    assert jobs["aggregate-0"][-2:] == ["aggregate", "0"]
    # a resubmit of seed 1 while seed 0 still runs, prep done: its aggregate job waits for both
    wave = submit.Wave([1], [0], prep=False, running={"task-0": "41_0"})
    again = dict(submit.planned_jobs(folder, record, wave, {"array": "60"}))
    assert list(again) == ["array", "aggregate-0"]
    assert "--dependency=afterok:60_1:41_0" in again["aggregate-0"]
    assert not [a for a in again["array"] if a.startswith("--dependency")]


def test_resources_are_sbatch_arguments_and_a_resubmit_replaces_the_time():
    options = Namespace(partition="gpu", account=None, stop_before=90, sbatch=["--qos=short"], gres="gpu:1",
                        prep_time="00:30:00", time="01:00:00", aggregate_time="00:10:00")
    flags = submit.resources(options, range_test=False)
    assert flags[PREP] == ["--partition=gpu", "--signal=B:USR1@90", "--qos=short", "--time=00:30:00"]
    assert flags[TASK][-2:] == ["--gres=gpu:1", "--time=01:00:00"] and "--gres=gpu:1" not in flags[AGGREGATE]
    assert "--gres=gpu:1" in submit.resources(options, range_test=True)[PREP]  # a range test trains
    assert submit.with_time(flags[TASK], "2")[-1] == "--time=2" and sum(
        f.startswith("--time=") for f in submit.with_time(flags[TASK], "2")) == 1


HOSTILE = ["a b", "$(touch pwned)", "`touch pwned`", "it's", '"quoted"', "back\\slash", "*", "~", ""]


def rendered(tmp_path, names=("g-1", "g-2"), sets=("optim.lr=0.01",)) -> tuple[Submission, Path]:
    record = submission()
    record.experiments = [Experiment(n, x.seeds, list(sets), x.prep)
                          for n, x in zip(names, record.experiments, strict=True)]
    env = tmp_path / "job.env"
    env.write_text(submit.render(record, tmp_path / "sub folder", None, 120))
    return record, env


def test_job_env_holds_every_value_as_data_which_bash_reads_back_exactly(tmp_path):
    name, data_url = "dry$(touch${IFS}pwned)", "http://x/$(touch pwned)\"`touch pwned`"
    sets = ["optim.lr=0.01", f"data.url='{data_url}'", *(f"data.md5={v}" for v in HOSTILE)]
    record, env = rendered(tmp_path, names=(name, "it's"), sets=sets)
    text = env.read_text()
    assert not re.findall(r"^(?!#)(?![A-Z_0-9]+=).+", text, re.M), text  # comments and assignments only
    printed = ('set -u; source "$0"; printf "%s\\n" "$SUBMISSION" "${NAMES[@]}" "${SETS_0[@]}" '
               '"${TASK_SEED[@]}" "${TASK_KEYS[@]}" "${AGGREGATE_KEYS[@]}" "$PREP_KEY" "[$SCRATCH]"')
    read = subprocess.run(["bash", "-c", printed, str(env)], cwd=tmp_path, capture_output=True, text=True)
    assert read.returncode == 0, read.stderr
    flat = [a for s in sets for a in ("-S", s)]
    assert read.stdout.split("\n")[:-1] == [str(tmp_path / "sub folder"), name, "it's", *flat, "0", "1", "",
                                            "task-0", "task-1", "task-2", "aggregate-0", "aggregate-1",
                                            "prep", "[]"]
    assert not list(tmp_path.glob("pwned"))
    sbatch = re.findall(r"^#   (?:(\w+)=\$\()?(sbatch --parsable .*?)\)?$", text, re.M)
    assert [job for job, _ in sbatch] == ["PREP", "ARRAY", ""]
    assert shlex.split(sbatch[2][1])[-4:] == [str(tmp_path / "sub folder/job.sh"),
                                              str(tmp_path / "sub folder/job.env"), "aggregate", "0"]


@needs_shellcheck
def test_the_static_job_script_and_a_rendered_job_env_pass_shellcheck(tmp_path):
    """Debian's shellcheck, at its default severity (style included), finds nothing in job.sh or in a job.env
    of awkward values; and it is not blind: one unquoted expansion in a copy of job.sh is found."""
    _, env = rendered(tmp_path, names=("a b", "c$(d)"), sets=HOSTILE)
    for path in (submit.SCRIPT, env):
        proc = subprocess.run(["shellcheck", "--shell=bash", str(path)], capture_output=True, text=True)
        assert proc.returncode == 0 and proc.stdout == "", proc.stdout
    assert re.findall(r"^#SBATCH.*", submit.SCRIPT.read_text(), re.M) == ["#SBATCH --job-name=cifarpipe"]
    broken = tmp_path / "job.sh"
    broken.write_text(submit.SCRIPT.read_text().replace('cd "$work" ||', "cd $work ||"))
    proc = subprocess.run(["shellcheck", "--shell=bash", str(broken)], capture_output=True, text=True)
    assert proc.returncode == 1 and "SC2086" in proc.stdout


def test_the_remotes_options_travel_to_the_clones_and_its_secrets_stay(tmp_path, monkeypatch):
    run(["git", "init", "-q"], tmp_path)
    (tmp_path / ".dvc").mkdir()
    (tmp_path / ".dvc" / "config").write_text(
        "[core]\n    remote = lab\n['remote \"lab\"']\n    url = s3://bucket/cifar\n"
        "    endpointurl = http://minio.lab:9000\n    profile = lab\n")
    (tmp_path / ".dvc" / "config.local").write_text(
        "['remote \"lab\"']\n    region = eu-west-1\n    access_key_id = AKIAEXAMPLE\n"
        "    secret_access_key = s3cr3t-value\n    session_token = t0ken-value\n")
    monkeypatch.chdir(tmp_path)
    remote = submit.dvc_remote()
    assert remote == {"name": "lab", "url": "s3://bucket/cifar", "options": {
        "endpointurl": "http://minio.lab:9000", "profile": "lab", "region": "eu-west-1"}}
    record = submission()
    record.dvc_remote = remote
    script = submit.render(record, tmp_path / "sub", None, 120)
    assert "DVC_OPTIONS=(endpointurl http://minio.lab:9000 profile lab region eu-west-1)" in script
    assert not re.search("AKIA|s3cr3t|t0ken", script)


# -- validate -----------------------------------------------------------------------------------------------
def test_bad_input_is_one_line_naming_the_fix():
    refused = {
        lambda: validate.checked_text("--account", "lab\x00"): "holds the control character '\\x00'",
        lambda: validate.checked_time("--time", "an hour"): "--time 'an hour': sbatch takes minutes, MM:SS",
        lambda: validate.checked_name("lr..sweep"): "-n 'lr..sweep' is not a valid experiment name",
        lambda: validate.grid(["optim.lr=[0.1"]): "-S 'optim.lr=[0.1': no viable alternative at input",
        lambda: validate.checked_sets([["optim.lrr=0.1"]], PARAMS_YAML.read_text()):
            "-S optim.lrr=0.1: Could not override 'optim.lrr'. To append to your config use +optim.lrr=0.1",
    }
    for call, message in refused.items():
        with pytest.raises(ToolError) as error:
            call()
        assert message in str(error.value) and "\n" not in str(error.value), str(error.value)
    assert [validate.checked_time("--time", t) for t in ("10", "1-02:00", "00:30:00", None)] == [
        "10", "1-02:00", "00:30:00", None]
    assert validate.checked_name("lr-sweep_2") == "lr-sweep_2"


# -- state --------------------------------------------------------------------------------------------------
def test_states_are_slurms_word_where_it_knows_best_else_the_jobs_own():
    running = state.SlurmJob("RUNNING", None, "node1", "00:01:00")
    done = state.SlurmJob("FAILED", 124, "n", "")
    mine = {"state": "TIMEOUT", "code": "124", "phase": "run", "signal": "USR1"}
    assert state.merged(running, {"state": "RUNNING"}) == ("RUNNING", "")
    assert state.merged(done, mine) == ("TIMEOUT", "124")  # stopped itself before the limit: exit 124
    assert state.merged(state.SlurmJob("FAILED", 1, "n", ""), {"state": "FAILED", "code": "1",
                                                               "phase": "push"}) == ("FAILED (push)", "1")
    # SIGKILLed (out of memory) after the job wrote it was running: SLURM's word
    killed = state.SlurmJob("OUT_OF_MEMORY", 0, "n", "")
    assert state.merged(killed, {"state": "RUNNING"})[0] == "OUT_OF_MEMORY"
    assert state.merged(None, {"state": "RUNNING"}) == ("UNKNOWN", "")  # no record, and no end written
    assert state.merged(None, mine) == ("TIMEOUT", "124")  # slurmctld forgot it: the job's own file
    # sacct's view, where accounting runs (the test cluster has none): one line per job or array task
    found = state.parse_sacct("41|COMPLETED|0:0|node1|00:00:12\n42_0|TIMEOUT|0:15|node1|00:01:02\n"
                              "42_1|CANCELLED by 0|0:15|node2|00:00:03\n42_[2-3%2]|PENDING|0:0|None assigned|"
                              "00:00:00\n43|PENDING|0:0|None assigned|00:00:00\n")
    assert {k: (j.state, j.code, j.node) for k, j in found.items()} == {
        "41": ("COMPLETED", 0, "node1"), "42_0": ("TIMEOUT", 0, "node1"), "42_1": ("CANCELLED", 0, "node2"),
        "42_2": ("PENDING", None, ""), "42_3": ("PENDING", None, ""), "43": ("PENDING", None, "")}
    line = ("JobId=51 ArrayJobId=50 ArrayTaskId=1 JobState=FAILED Reason=NonZeroExitCode ExitCode=3:0 "
            "RunTime=00:00:04 NodeList=node2\nJobId=50 ArrayJobId=50 ArrayTaskId=2-3 JobState=PENDING "
            "Reason=Dependency ExitCode=0:0 RunTime=00:00:00 NodeList=(null)\n")
    assert {k: (j.state, j.code, j.node, j.reason) for k, j in state.parse_scontrol(line).items()} == {
        "50_1": ("FAILED", 3, "node2", "NonZeroExitCode"), "50_2": ("PENDING", None, "", "Dependency"),
        "50_3": ("PENDING", None, "", "Dependency"), "50": ("ARRAY", None, "", "")}


def test_the_view_merges_each_jobs_runs_and_names_what_to_select(tmp_path, monkeypatch):
    """Where no SLURM command answers, the status files alone: the latest run of each job, its earlier
    runs in the notes; a selector that names nothing lists what there is."""
    monkeypatch.setenv("PATH", "")  # no scontrol, no sacct
    record = submission()
    record.launches = [Launch({"prep": "40", "array": "41", "aggregate-0": "42"}, [0, 1, 2], [0]),
                       Launch({"array": "45", "aggregate-0": "46"}, [1], [0])]
    (tmp_path / "status").mkdir()
    files = {"prep.40": {"state": "COMPLETED", "code": "0", "job": "40"},
             "task-1.43": {"state": "TIMEOUT", "code": "124", "job": "43", "array_job": "41"},
             "task-1.47": {"state": "FAILED", "code": "1", "phase": "push", "job": "47", "array_job": "45",
                           "clone": "/scratch/c"}}
    for name, status in files.items():
        state.write_status(tmp_path / "status" / name, status)
    rows = {str(r.key): r for r in state.view(tmp_path, record)[0]}
    assert rows["prep"].done and rows["task-1"].job == "45_1" and rows["task-1"].state == "FAILED (push)"
    assert rows["task-1"].notes == ["clone kept: /scratch/c", "earlier: TIMEOUT (job 41_1)"]
    assert rows["task-0"].state == "UNKNOWN" and rows["aggregate-0"].job == "46"
    assert rows["task-1"].what == "task-1 (g-1, seed 1)" and rows["task-2"].what == "task-2 (g-2)"
    assert state.selected(list(rows.values()), ["1", "g-2"]) == [rows["task-1"], rows["task-2"]]
    with pytest.raises(ToolError, match="--job 'g-3': no such job in this submission; it has prep, task-0, "
                       "task-1, task-2, aggregate-0 and the experiments g-1, g-2"):
        state.selected(list(rows.values()), ["g-3"])


# -- push ---------------------------------------------------------------------------------------------------
def test_a_push_that_would_replace_another_runs_experiment_fails_unless_it_is_this_jobs(tmp_path):
    """DVC's "diverged" (an experiment of that name already on the remote, from another run) exits 0: it
    counts as a failure, unless the experiment there is one an earlier run of the same job pushed."""
    origin = tmp_path / "origin.git"
    run(["git", "init", "-q", "--bare", str(origin)], tmp_path)
    first = tmp_path / "first"
    first.mkdir()
    run(["git", "init", "-q", "-b", "main"], first)
    (first / "params.yaml").write_text("x: 1\n")
    (first / "dvc.yaml").write_text("stages:\n  make:\n    cmd: echo ${x} > out.txt\n    params: [x]\n"
                                    "    outs: [out.txt]\n")
    dvc("init", "-q", cwd=first)
    dvc("remote", "add", "-d", "store", str(tmp_path / "store"), cwd=first)
    run(["git", "add", "-A"], first)
    run(["git", "commit", "-qm", "a pipeline"], first)
    run(["git", "push", "-q", str(origin), "main"], first)
    second = tmp_path / "second"
    run(["git", "clone", "-q", "-b", "main", str(origin), str(second)], tmp_path)
    remote = Remote(str(origin), run(["git", "rev-parse", "HEAD"], first).stdout.strip())
    for clone, x in ((first, 2), (second, 3)):
        dvc("exp", "run", "-q", "-n", "same", "-S", f"x={x}", cwd=clone)
    once = Backoff(tries=2, backoff_s=0)
    assert push_experiment(first, remote, "same", once, ours=[]) is None
    there = remote_sha(remote.url, remote.ref("same"))
    why = push_experiment(second, remote, "same", once, ours=[])
    assert "already holds an experiment same from another run" in why and "diverged" in why
    assert remote_sha(remote.url, remote.ref("same")) == there
    assert push_experiment(second, remote, "same", once, ours=[there]) is None  # an earlier run of this job's
    assert remote_sha(remote.url, remote.ref("same")) != there
    assert push_experiment(second, remote, "other", once, []).startswith("this clone holds no experiment")
