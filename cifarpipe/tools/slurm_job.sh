#!/bin/bash
#SBATCH --job-name=${job_name}
${sbatch_lines}
#
# Rendered by `cifarpipe slurm submit` at commit ${commit}:
# ${summary}.
# One script, three roles; `cifarpipe slurm submit` runs them as
#   sbatch job.sh prep                             the stages every experiment shares, once
#   sbatch --array=0-${last_task} --dependency=afterok:PREP job.sh task   one experiment, or one seed of one
#   sbatch --dependency=afterok:TASKS job.sh aggregate E    experiment E's seeds, restored from the run-cache
# Every job works in its own clone in scratch space and talks to the user's checkout only through the git
# remote and the DVC remote, so no DVC lock is ever shared (DVC issue #7419).
set -euo pipefail

GIT_REMOTE=${git_remote}
COMMIT=${commit}
DVC_REMOTE=${dvc_remote}
# job.sh, submission.json, logs/ and status/ (each job's exit code, node and GPUs), on a shared file system
SUBMISSION=${submission}
SCRATCH=${scratch}

# The experiments: EXPERIMENTS[E] is one's name, seeds and the stages prep runs for it; SETS_E its -S sets
${experiments}
# The array: TASKS[I] is "E" (experiment E, all its seeds) or "E SEED" (one seed of it)
${tasks}

role=$${1:?"usage: sbatch job.sh prep | task (in an array) | aggregate E"}
case $$role in
  prep) id=prep ;;
  task) id=task-$$SLURM_ARRAY_TASK_ID ;;
  aggregate) id=aggregate-$${2:?which experiment}; experiment=$$2 ;;
  *) echo "unknown role $$role: prep, task or aggregate" >&2; exit 2 ;;
esac
work=$$SCRATCH/cifarpipe-$$SLURM_JOB_ID
trap 'code=$$?; printf "%s\t%s\t%s\t%s\n" "$$code" "$${SLURMD_NODENAME:-?}" "$${CUDA_VISIBLE_DEVICES:-}" \
  "$${SLURM_ARRAY_JOB_ID:-$$SLURM_JOB_ID}" > "$$SUBMISSION/status/$$id"; rm -rf "$$work"' EXIT
echo "$$id on node $${SLURMD_NODENAME:-?}, CUDA_VISIBLE_DEVICES=$${CUDA_VISIBLE_DEVICES:-none}, in $$work"

started=$$SECONDS
git clone -q "$$GIT_REMOTE" "$$work"
cd "$$work"
git checkout -q --detach "$$COMMIT"
dvc remote add -q -f -d --local cluster "$$DVC_REMOTE"
echo "phase clone $$((SECONDS - started)) s"
# every dvc exp run below pulls (--pull) what the DVC remote holds already, run-cache included: a stage run
# before, by prep or by another task, is restored instead of rerun

started=$$SECONDS
case $$role in
  prep)  # the data, its stats and corrupted sets, and the range test where optim.lr is unset: each made once
    for e in "$${!EXPERIMENTS[@]}"; do
      read -r name seeds targets <<< "$${EXPERIMENTS[$$e]}"
      declare -n sets=SETS_$$e
      dvc exp run --pull "$${sets[@]}" $$targets || echo "$$name: its shared stages failed; its task will say why"
    done
    echo "phase run $$((SECONDS - started)) s"; started=$$SECONDS
    dvc push -q --run-cache ;;
  task)
    read -r experiment seed <<< "$${TASKS[$$SLURM_ARRAY_TASK_ID]}"
    read -r name seeds _ <<< "$${EXPERIMENTS[$$experiment]}"
    declare -n sets=SETS_$$experiment
    if [ -z "$$seed" ]; then
      dvc exp run --pull -n "$$name" "$${sets[@]}" -S "train.seeds=[$$seeds]"
      echo "phase run $$((SECONDS - started)) s"; started=$$SECONDS
      dvc exp push --run-cache "$$GIT_REMOTE" "$$name"
    else  # one seed of the experiment: its stages go to the run-cache, for the aggregate job
      dvc exp run --pull "$${sets[@]}" -S "train.seeds=[$$seed]" "evaluate@$$seed" "robustness@$$seed"
      echo "phase run $$((SECONDS - started)) s"; started=$$SECONDS
      dvc push -q --run-cache
    fi ;;
  aggregate)  # every seed is in the run-cache: DVC restores them and runs what reads them all
    read -r name seeds _ <<< "$${EXPERIMENTS[$$experiment]}"
    declare -n sets=SETS_$$experiment
    dvc exp run --pull -n "$$name" "$${sets[@]}" -S "train.seeds=[$$seeds]"
    echo "phase run $$((SECONDS - started)) s"; started=$$SECONDS
    dvc exp push --run-cache "$$GIT_REMOTE" "$$name" ;;
esac
echo "phase push $$((SECONDS - started)) s"
