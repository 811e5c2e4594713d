"""The test SLURM cluster itself (tests/slurm_cluster.py): 3 idle nodes, node1 with two GPUs; a GPU array over
them, each task on a GPU of its own; a dry run; a dependency, and SLURM's default for one that can never be
met. Seconds, not minutes; skipped where SLURM is not installed."""
import time

from slurm_cluster import job_states, run_slurm, submit, wait_for_jobs

ARRAY_TASK = """#!/bin/bash
echo "$SLURMD_NODENAME $CUDA_VISIBLE_DEVICES $SUBMITTED_WITH $(pwd) $(id -u)" > task-$SLURM_ARRAY_TASK_ID.txt
exit $SLURM_ARRAY_TASK_ID
"""


def test_three_idle_nodes_node1_with_two_gpus(slurm_cluster):
    result = run_slurm(slurm_cluster, "sinfo", "--noheader", "--Node", "--format=%N %T %G %c")
    assert result.returncode == 0, result.stderr
    assert sorted(result.stdout.splitlines()) == ["node1 idle gpu:2 2", "node2 idle gpu:1 1",
                                                  "node3 idle gpu:1 1"], result.stdout


def test_gpu_array_gives_each_task_a_gpu_of_its_own(slurm_cluster, tmp_path):
    script = tmp_path / "task.sh"
    script.write_text(ARRAY_TASK)
    result = run_slurm(slurm_cluster, "sbatch", "--parsable", "--array=0-3", "--gres=gpu:1", "--wait",
                       "--output=slurm-%A_%a.out", script, cwd=tmp_path, env={"SUBMITTED_WITH": "submit-env"})
    assert result.returncode == 3, result.stderr  # sbatch --wait: the highest exit code of the tasks
    lines = [(tmp_path / f"task-{task}.txt").read_text().split() for task in range(4)]
    # four GPUs, four tasks at once: node1's two (CUDA_VISIBLE_DEVICES 0 and 1), node2's and node3's
    assert sorted((line[0], line[1]) for line in lines) == [("node1", "0"), ("node1", "1"), ("node2", "0"),
                                                            ("node3", "0")], lines
    assert all(line[2:] == ["submit-env", str(tmp_path), "0"] for line in lines), lines
    tasks = job_states(slurm_cluster, result.stdout.strip())
    assert {task: (state.state, state.exit_code) for task, state in tasks.items()} == {
        0: ("COMPLETED", 0), 1: ("FAILED", 1), 2: ("FAILED", 2), 3: ("FAILED", 3)}


def test_test_only_checks_a_script_without_running_it(slurm_cluster, tmp_path):
    script = tmp_path / "task.sh"
    script.write_text("#!/bin/bash\ntouch ran\n")
    result = run_slurm(slurm_cluster, "sbatch", "--test-only", "--gres=gpu:1", script, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "to start at" in result.stderr
    refused = run_slurm(slurm_cluster, "sbatch", "--test-only", "--gres=gpu:3", script, cwd=tmp_path)
    assert refused.returncode != 0  # no node has three GPUs
    time.sleep(0.5)
    assert not (tmp_path / "ran").exists()


def test_afterok_dependency_runs_after_its_job(slurm_cluster, tmp_path):
    first = submit(slurm_cluster, f"--chdir={tmp_path}", "--wrap", "sleep 1; date +%s.%N > a")
    second = submit(slurm_cluster, f"--chdir={tmp_path}", f"--dependency=afterok:{first}",
                    "--wrap", "date +%s.%N > b")
    states = wait_for_jobs(slurm_cluster, [first, second], timeout=60)
    assert [states[job][None].state for job in (first, second)] == ["COMPLETED", "COMPLETED"], states
    assert float((tmp_path / "b").read_text()) > float((tmp_path / "a").read_text())


def test_a_dependency_that_can_never_be_met_pends_for_ever_unless_asked_to_die(slurm_cluster, tmp_path):
    """SLURM's default, which this cluster keeps (no DependencyParameters=kill_invalid_depend): afterok on a
    failed job leaves the dependent job PENDING (DependencyNeverSatisfied) for ever; --kill-on-invalid-dep=yes
    cancels it."""
    failed = submit(slurm_cluster, f"--chdir={tmp_path}", "--wrap", "exit 3")
    hangs = submit(slurm_cluster, f"--chdir={tmp_path}", f"--dependency=afterok:{failed}", "--wrap", "true")
    dies = submit(slurm_cluster, f"--chdir={tmp_path}", f"--dependency=afterok:{failed}",
                  "--kill-on-invalid-dep=yes", "--wrap", "true")
    states = wait_for_jobs(slurm_cluster, [failed, dies], timeout=60)
    assert states[dies][None].state == "CANCELLED" and states[dies][None].reason == "DependencyNeverSatisfied"
    time.sleep(3)  # a few scheduling passes later, still waiting
    hanging = job_states(slurm_cluster, hangs)[None]
    assert (hanging.state, hanging.reason) == ("PENDING", "DependencyNeverSatisfied"), hanging
    run_slurm(slurm_cluster, "scancel", hangs)
