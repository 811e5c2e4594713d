#!/usr/bin/env bash
# The pull request's report over seed groups, in rounds (.github/workflows/train-and-report.yaml runs it):
#     scripts/pr_report.sh [--seeds N] [BASE]     # BASE: the git revision to compare against, default origin/main
# Each round, as params.yaml's noise group sets it (noise.first_seeds a side, then noise.round_seeds more, up to
# noise.max_seeds):
# 1. the change (this checkout) over train.seeds = [0, ..., n-1]: dvc exp run, the seeds of earlier rounds restored
#    from DVC's run cache;
# 2. the base, in a git worktree sharing this DVC cache, over the same seeds: restored from the DVC remote's run cache
#    where it has them (the workflow pushes it), else run here; committed in the worktree, so the report reads them
#    by revision;
# 3. cifarpipe report --sequential: report.md, and report.json saying whether test accuracy is decided. The rounds
#    stop as soon as it is (better, worse or equivalent), or at noise.max_seeds (docs/noise.md).
# --seeds N: one round of N seeds a side, compared as a fixed design.
set -euo pipefail
fixed=""
while [ $# -gt 0 ]; do
  case $1 in
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    --seeds) fixed=$2; shift 2 ;;
    -*) echo "error: unknown option $1 (scripts/pr_report.sh --help)" >&2; exit 2 ;;
    *) break ;;
  esac
done
root=$(pwd)
base=${1:-origin/main}
if [ -n "$fixed" ]; then
  looks=$fixed
else
  looks=$(python3 -c 'from cifarpipe.aggregate.sequential import Design; from cifarpipe.core.params import load_params
print(" ".join(map(str, Design.from_noise(load_params().noise).looks)))')
fi

worktree=$(mktemp -d)/base
git worktree add -q --detach "$worktree" "$base"
trap 'git -C "$root" worktree remove --force "$worktree"' EXIT
(cd "$worktree" && dvc cache dir --local "$root/.dvc/cache")
dvc pull -q --run-cache 2>/dev/null || echo "no DVC remote to pull from: every seed runs here"

for n in $looks; do
  seeds=$(python3 -c 'import sys; print(list(range(int(sys.argv[1]))))' "$n" | tr -d ' ')
  echo "round of $n seeds a side: change, seeds $seeds"
  dvc exp run -S "train.seeds=$seeds"
  echo "round of $n seeds a side: base ($base), seeds $seeds (what the run cache holds is restored, not rerun)"
  (
    cd "$worktree"
    dvc exp run -S "train.seeds=$seeds"
    git add -A && { git commit -qm "base over seeds $seeds, for the pull request's report" || true; }
  )
  if [ -n "$fixed" ]; then
    cifarpipe report --base "$(git -C "$worktree" rev-parse HEAD)" --out report.md > /dev/null
    break
  fi
  cifarpipe report --sequential --base "$(git -C "$worktree" rev-parse HEAD)" --out report.md > /dev/null
  decided=$(python3 -c 'import json; print(json.load(open("report.json"))["decided"])')
  echo "round of $n seeds a side: $(python3 -c 'import json; r = json.load(open("report.json")); print(r["call"])')"
  [ "$decided" = True ] && break
done
echo "report.md written"
