"""The test SLURM cluster itself (tests/slurm_cluster.py): 3 idle nodes, a GPU array spread over them, a dry
run and a dependency. Seconds, not minutes; skipped where SLURM is not installed."""
import time

from slurm_cluster import job_states, run_slurm, submit, wait_for_jobs

ARRAY_TASK = """#!/bin/bash
echo "$SLURMD_NODENAME $CUDA_VISIBLE_DEVICES $SUBMITTED_WITH $(pwd) $(id -u)" > task-$SLURM_ARRAY_TASK_ID.txt
exit $SLURM_ARRAY_TASK_ID
"""


def test_three_idle_nodes_with_a_gpu_each(slurm_cluster):
    result = run_slurm(slurm_cluster, "sinfo", "--noheader", "--Node", "--format=%N %T %G")
    assert result.returncode == 0, result.stderr
    assert sorted(result.stdout.splitlines()) == [f"node{i} idle gpu:1" for i in (1, 2, 3)], result.stdout


def test_gpu_array_runs_one_task_per_node(slurm_cluster, tmp_path):
    script = tmp_path / "task.sh"
    script.write_text(ARRAY_TASK)
    result = run_slurm(slurm_cluster, "sbatch", "--parsable", "--array=0-2", "--gres=gpu:1", "--wait",
                       "--output=slurm-%A_%a.out", script, cwd=tmp_path, env={"SUBMITTED_WITH": "submit-env"})
    assert result.returncode == 2, result.stderr  # sbatch --wait: the highest exit code of the tasks
    lines = [(tmp_path / f"task-{task}.txt").read_text().split() for task in range(3)]
    assert sorted(line[0] for line in lines) == ["node1", "node2", "node3"]
    assert all(line[1:] == ["0", "submit-env", str(tmp_path), "0"] for line in lines), lines
    tasks = job_states(slurm_cluster, result.stdout.strip())
    assert {task: (state.state, state.exit_code) for task, state in tasks.items()} == {
        0: ("COMPLETED", 0), 1: ("FAILED", 1), 2: ("FAILED", 2)}
    assert sorted(state.node for state in tasks.values()) == ["node1", "node2", "node3"]


def test_test_only_checks_a_script_without_running_it(slurm_cluster, tmp_path):
    script = tmp_path / "task.sh"
    script.write_text("#!/bin/bash\ntouch ran\n")
    result = run_slurm(slurm_cluster, "sbatch", "--test-only", "--gres=gpu:1", script, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "to start at" in result.stderr
    refused = run_slurm(slurm_cluster, "sbatch", "--test-only", "--gres=gpu:2", script, cwd=tmp_path)
    assert refused.returncode != 0  # no node has two GPUs
    time.sleep(0.5)
    assert not (tmp_path / "ran").exists()


def test_afterok_dependency_runs_after_its_job(slurm_cluster, tmp_path):
    first = submit(slurm_cluster, f"--chdir={tmp_path}", "--wrap", "sleep 1; date +%s.%N > a")
    second = submit(slurm_cluster, f"--chdir={tmp_path}", f"--dependency=afterok:{first}",
                    "--wrap", "date +%s.%N > b")
    states = wait_for_jobs(slurm_cluster, [first, second], timeout=60)
    assert [states[job][None].state for job in (first, second)] == ["COMPLETED", "COMPLETED"], states
    assert float((tmp_path / "b").read_text()) > float((tmp_path / "a").read_text())
