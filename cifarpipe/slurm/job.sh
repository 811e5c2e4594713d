#!/bin/bash
#SBATCH --job-name=cifarpipe
#
# One job of a `cifarpipe slurm` submission: sbatch [flags] job.sh JOB_ENV prep | task | aggregate E.
# The same script for every submission (cifarpipe/slurm/job.sh, copied into the submission's folder); what
# differs is JOB_ENV, the submission's job.env, which `cifarpipe slurm submit` writes and --dry-run prints:
# plain assignments quoted with shlex.quote, so every value in it is data. Only the submission's setup.sh
# (--setup) runs as code. One script, three roles: prep, the shared stages once; task, a job array after
# prep, one experiment or one seed of it; aggregate E, after experiment E's seeds, the whole seed list.
# Every job works in a clone of its own in scratch space and talks to the user's checkout only through the git
# remote and the DVC remote, so no DVC lock is ever shared (DVC issue #7419). Each writes what became of it to
# status/ in the submission's folder (its state, exit code, node, GPUs, the signal that stopped it, a clone it
# kept) and keeps its training checkpoints in checkpoints/ there, where a rerun of the same task resumes them.
set -uo pipefail

# what JOB_ENV sets (cifarpipe/slurm/submit.py writes it): the submission's folder and remotes, and
SUBMISSION="" GIT_REMOTE="" COMMIT="" DVC_REMOTE="" DVC_URL="" SCRATCH=""
DVC_OPTIONS=()  # the DVC remote's options, KEY VALUE ...; never its secrets
PUSH_TRIES=4 PUSH_BACKOFF=15  # a push's tries; seconds before the second, doubled before each next one
STOP_BEFORE=120  # a job stops and saves this many seconds before its time limit (--signal=B:USR1@)
# the experiments: NAMES[E], its seeds SEEDS[E], what prep runs for it PREP_STAGES[E], its -S sets SETS_E;
# prep runs for the experiments PREP_RUNS (one of each group whose prep stages see the same params)
NAMES=() SEEDS=() PREP_STAGES=() PREP_RUNS=()
# the array: task I is experiment TASK_EXPERIMENT[I], all its seeds (TASK_SEED[I] empty) or seed TASK_SEED[I]
TASK_EXPERIMENT=() TASK_SEED=()
# the jobs' keys, which name their status files, logs and checkpoints: prep's, task I's, aggregate E's
PREP_KEY="" TASK_KEYS=() AGGREGATE_KEYS=()
values=${1:?"usage: sbatch job.sh JOB_ENV prep | task (in an array) | aggregate E"}
# shellcheck source=/dev/null
source "$values" || { echo "cannot read the submission's values from $values" >&2; exit 2; }
SCRATCH=${SCRATCH:-${CIFARPIPE_SCRATCH:-${TMPDIR:-/tmp}}}

role=${2:?"usage: sbatch job.sh JOB_ENV prep | task (in an array) | aggregate E"}
case $role in
  prep) id=$PREP_KEY ;;
  task) experiment=${TASK_EXPERIMENT[${SLURM_ARRAY_TASK_ID:?"a task runs in a job array (sbatch --array)"}]}
        id=${TASK_KEYS[SLURM_ARRAY_TASK_ID]} ;;
  aggregate) experiment=${3:?"which experiment"}; id=${AGGREGATE_KEYS[experiment]} ;;
  *) echo "unknown role $role: prep, task or aggregate" >&2; exit 2 ;;
esac
job=${SLURM_JOB_ID:?"submit it with sbatch"}
me=${SLURM_ARRAY_JOB_ID:+${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}}  # what squeue calls this job
me=${me:-$job}
seed=""         # the task's seed, when it trains one seed of its experiment
[ "$role" != task ] || seed=${TASK_SEED[$SLURM_ARRAY_TASK_ID]}
gpus=${SLURM_JOB_GPUS:-${CUDA_VISIBLE_DEVICES:-}}  # SLURM's (the node's numbers), else what the job sees
work=$SCRATCH/cifarpipe-$job
status=$SUBMISSION/status/$id.$job
started=$(date +%s)
phase=setup     # setup, clone, run, push: what the job is doing, recorded with its end
stopping=""     # TIMEOUT (its time limit is near) or CANCELLED (SIGTERM before the limit), once asked to stop
signal=""       # the signal that asked it: USR1 (SLURM's warning), TERM (scancel, preemption, the limit)
child=""        # the running step's process group
keep=""         # the clone, kept when a push failed
timer=""
finished=""

record() {  # record STATE [CODE]: this job's status file, written whole (a temp file, then renamed)
  local end=""
  [ "$1" = RUNNING ] || end=$(date +%s)
  {
    printf 'state\t%s\ncode\t%s\nphase\t%s\nsignal\t%s\n' "$1" "${2:-}" "$phase" "$signal"
    printf 'node\t%s\ngpus\t%s\n' "${SLURMD_NODENAME:-$(hostname -s)}" "$gpus"
    printf 'job\t%s\narray_job\t%s\n' "$job" "${SLURM_ARRAY_JOB_ID:-}"
    printf 'start\t%s\nend\t%s\nclone\t%s\n' "$started" "$end" "$keep"
  } > "$status.tmp" && mv -f "$status.tmp" "$status"
}

finish() {  # finish STATE CODE: record it, remove the clone unless it is kept, exit with CODE
  finished=yes
  [ -z "$timer" ] || kill "$timer" 2>/dev/null
  record "$1" "$2"
  cd "$SUBMISSION" && { [ -n "$keep" ] || rm -rf "$work"; }
  echo "$id: $1${keep:+, clone kept in $keep}"
  exit "$2"
}
# a backstop: an exit that did not go through finish (a failing setup line) is recorded too
trap '[ -n "$finished" ] || finish FAILED "$?"' EXIT

end_time() {  # the job's time limit, in seconds since the epoch, as slurmctld has it; 0 if unknown
  local end
  end=$(squeue -h -j "$me" -o %e 2>/dev/null | head -n 1)
  [ -n "$end" ] && date -d "$end" +%s 2>/dev/null || echo 0
}
# shellcheck disable=SC2317  # shellcheck 0.9 sees no call: the traps below run it
stop() {  # stop STATE SIGNAL: end the running step, dvc and the stage it runs with it (its process group)
  [ -n "$stopping" ] || stopping=$1
  signal=$2
  [ -n "$child" ] || return 0
  kill -TERM -- "-$child" 2>/dev/null  # as SLURM does (a background job ignores INT)
  (sleep 30; kill -KILL -- "-$child") 2>/dev/null &  # if it is still there then
}
# shellcheck disable=SC2317  # shellcheck 0.9 sees no call: the traps below run it
on_usr1() {  # SLURM's warning comes up to a minute early: stop STOP_BEFORE s before the limit itself
  local end left
  end=$(end_time)
  left=$((end - STOP_BEFORE - $(date +%s)))
  if [ "$end" -eq 0 ] || [ "$left" -le 0 ]; then stop TIMEOUT USR1; return; fi
  echo "the time limit is at $(date -d "@$end" +%T):" \
    "stopping $STOP_BEFORE s before it to save, in $left s"
  ( sleep "$left"; kill -USR2 $$ ) & timer=$!
}
# shellcheck disable=SC2317  # shellcheck 0.9 sees no call: the traps below run it
on_term() {  # scancel, preemption or the time limit: SLURM sends TERM to every process, KILL a little later
  if [ "$limit" -gt 0 ] && [ "$(date +%s)" -ge $((limit - 2)) ]; then
    stop TIMEOUT TERM
  else
    stop CANCELLED TERM
  fi
  record "$stopping" 143  # at once: KILL may follow before the step has ended
}
limit=$(end_time)  # now, before a scancel makes the end time the time of the cancel
trap on_usr1 USR1
trap 'stop TIMEOUT USR1' USR2
trap on_term TERM

run() {  # run COMMAND...: in a process group of its own, waited for so that the traps above run at once
  setsid "$@" & child=$!
  local code
  while :; do
    wait "$child"; code=$?
    kill -0 "$child" 2>/dev/null || break  # still there: the wait was cut short by a signal
  done
  child=""
  return "$code"
}

# the push, tried PUSH_TRIES times with backoff: the run-cache and its outputs; an experiment, if named, too
push=(python -m cifarpipe.tools.cli slurm push-clone --tries "$PUSH_TRIES" --backoff "$PUSH_BACKOFF")

save() {  # push the run-cache (every stage that finished) and its outputs, so a rerun restores them
  [ -d "$work/.dvc" ] || return 0
  echo "saving what finished to the DVC remote"
  run "${push[@]}" || keep=$work
}

stopped() {  # a stop was asked: save unless it was SIGTERM (KILL follows), record, exit
  if [ "$stopping" = TIMEOUT ] && [ "$signal" != TERM ]; then
    echo "stopped $STOP_BEFORE s before the time limit; its training resumes from checkpoints/$id on a rerun"
    save
    finish TIMEOUT 124
  fi
  finish "$stopping" 143
}

step() {  # step PHASE COMMAND...: one step of the job; a stop or a failure ends the job there
  phase=$1; shift
  [ -z "$stopping" ] || stopped
  run "$@"; local code=$?
  [ -z "$stopping" ] || stopped
  if [ "$code" -ne 0 ]; then
    [ "$phase" != run ] || save  # the stages that finished before the failure are not lost
    [ "$phase" != push ] || keep=$work  # nothing lost: the clone holds what the push did not get out
    finish FAILED "$code"
  fi
}

echo "$id of ${SUBMISSION##*/} on node ${SLURMD_NODENAME:-?}, GPU(s) ${gpus:-none}" \
  "(CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES:-none}), in $work"
record RUNNING
if [ -f "$SUBMISSION/setup.sh" ]; then  # the submission's --setup lines: module load, an environment, ...
  set -e +u
  # shellcheck source=/dev/null
  source "$SUBMISSION/setup.sh"
  set +e -u
fi

# an aggregate job runs only after every seed's task completed: SLURM drops a dependency on a pending
# array task that was cancelled, and this job would then train the missing seeds itself
if [ "$role" = aggregate ]; then
  missing=()
  for i in "${!TASK_EXPERIMENT[@]}"; do
    [ "${TASK_EXPERIMENT[i]}" != "$experiment" ] \
      || grep -qsx $'state\tCOMPLETED' "$SUBMISSION/status/${TASK_KEYS[i]}".*[0-9] \
      || missing+=("${TASK_KEYS[i]} (seed ${TASK_SEED[i]})")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "the tasks of ${missing[*]} did not complete: nothing to aggregate; resubmit them"
    finish FAILED 3
  fi
fi

started_phase=$SECONDS
step clone git clone -q "$GIT_REMOTE" "$work"
cd "$work" || finish FAILED 1
step clone git checkout -q --detach "$COMMIT"
step clone dvc remote add -q -f -d --local "$DVC_REMOTE" "$DVC_URL"
for ((i = 0; i < ${#DVC_OPTIONS[@]}; i += 2)); do
  step clone dvc remote modify -q --local "$DVC_REMOTE" "${DVC_OPTIONS[i]}" "${DVC_OPTIONS[i + 1]}"
done
# the train stage checkpoints every epoch into .checkpoints/: here, the submission's folder, for a rerun
if ! { mkdir -p "$SUBMISSION/checkpoints/$id" && ln -sfn "$SUBMISSION/checkpoints/$id" .checkpoints \
       && echo /.checkpoints >> .git/info/exclude; }; then
  finish FAILED 1
fi
if compgen -G ".checkpoints/*.pt" > /dev/null; then
  echo "checkpoints of an earlier run of $id: $(cd .checkpoints && echo *.pt); its training resumes from them"
fi
echo "phase clone $((SECONDS - started_phase)) s"
# every dvc exp run below pulls (--pull) what the DVC remote holds already, run-cache included: a stage run
# before, by prep or by another task, is restored instead of rerun

started_phase=$SECONDS
case $role in
  prep)  # the data, its stats and corrupted sets, and the range test where optim.lr is unset: each made once
    for e in "${PREP_RUNS[@]}"; do
      declare -n sets=SETS_$e
      read -ra stages <<< "${PREP_STAGES[e]}"
      phase=run
      run dvc exp run --pull "${sets[@]}" "${stages[@]}" \
        || echo "${NAMES[e]}: its shared stages failed; its task will say why"
      [ -z "$stopping" ] || stopped
    done
    echo "phase run $((SECONDS - started_phase)) s"; started_phase=$SECONDS
    step push "${push[@]}" ;;
  task|aggregate)
    declare -n sets=SETS_$experiment
    name=${NAMES[experiment]}
    if [ "$role" = task ] && [ -n "$seed" ]; then
      # one seed of the experiment: its stages go to the run-cache, for the aggregate job
      step run dvc exp run --pull "${sets[@]}" -S "train.seeds=[$seed]" "evaluate@$seed" "robustness@$seed"
      echo "phase run $((SECONDS - started_phase)) s"; started_phase=$SECONDS
      step push "${push[@]}"
    else  # the whole experiment (an aggregate job: every seed restored from the run-cache), pushed by name
      step run dvc exp run --pull -n "$name" "${sets[@]}" -S "train.seeds=[${SEEDS[experiment]}]"
      echo "phase run $((SECONDS - started_phase)) s"; started_phase=$SECONDS
      ours=()  # this task's experiment as earlier runs of it pushed it: a rerun may replace it
      for file in "$SUBMISSION/status/$id".*.sha; do [ -f "$file" ] && ours+=(--ours "$(cat "$file")"); done
      step push "${push[@]}" --git-remote "$GIT_REMOTE" --experiment "$name" --baseline "$COMMIT" \
        --sha-file "$status.sha" "${ours[@]}"
    fi ;;
esac
echo "phase push $((SECONDS - started_phase)) s"
rm -rf "$SUBMISSION/checkpoints/$id"
finish COMPLETED 0
