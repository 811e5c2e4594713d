#!/usr/bin/env bash
# The pull request's report over seed groups (.github/workflows/train-and-report.yaml runs it):
#     scripts/pr_report.sh SEEDS [BASE]        # BASE: the git revision to compare against, default origin/main
# 1. the change (this checkout) over train.seeds = [0, ..., SEEDS-1]: dvc exp run (the run-cache restores seeds run before)
# 2. the base, in a git worktree sharing this DVC cache, over the same seeds: its results from the DVC remote when they
#    are there, else run here (saying so) and committed in the worktree, so the report can read them by revision
# 3. cifarpipe report --base <that revision> --out report.md
set -euo pipefail
for arg in "$@"; do  # -h, --help: the header above, before anything runs
  case $arg in -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;; esac
done
[ $# -ge 1 ] || { echo "usage: scripts/pr_report.sh SEEDS [BASE]" >&2; exit 2; }
root=$(pwd)
base=${2:-origin/main}
seeds=$(python3 -c 'import sys; print(list(range(int(sys.argv[1]))))' "$1" | tr -d ' ')

echo "change: seeds $seeds"
dvc pull -q 2>/dev/null || true
dvc exp run -q -S "train.seeds=$seeds"

worktree=$(mktemp -d)/base
git worktree add -q --detach "$worktree" "$base"
trap 'git -C "$root" worktree remove --force "$worktree"' EXIT
(
  cd "$worktree"
  dvc cache dir --local "$root/.dvc/cache"
  dvc pull -q 2>/dev/null || true
  has=$(python3 -c 'import json; print(json.load(open("metrics/aggregate.json"))["seeds"])' 2>/dev/null | tr -d ' ' || true)
  if [ "$has" = "$seeds" ]; then
    echo "base ($base): seeds $seeds read from the DVC remote"
  else
    echo "base ($base): seeds $seeds are not all on the DVC remote (it has ${has:-none}): running them here"
    dvc exp run -q -S "train.seeds=$seeds"
    git add -A && git commit -qm "base over seeds $seeds, for the pull request's report"
  fi
)
cifarpipe report --base "$(git -C "$worktree" rev-parse HEAD)" --out report.md
