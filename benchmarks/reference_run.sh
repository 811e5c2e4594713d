#!/usr/bin/env bash
# The reference recipe through the pipeline itself: `dvc exp run -n reference` on the full proxy data, every other
# param as the revision's params.yaml ships it, in a fresh clone of that revision, at low priority (nice 19).
#
#     bash benchmarks/reference_run.sh [--rev REV] [--dir DIR] [--archive TAR.GZ] [--remote DIR] [--no-estimate]
#
#   --rev      the revision to clone (default: HEAD of this checkout)
#   --dir      the clone (default: ~/cifarpipe-reference). Run again with the same --dir to resume: the stages
#              that finished are cached, and a killed or timed-out training continues from its last epoch
#   --archive  an archive in the official layout (default: the proxy, built once into ~/cifar10-proxy)
#   --remote   after the run, push the experiment to this DVC remote (a folder) and its git refs to the clone's
#              origin, so the numbers can be checked later (`dvc exp pull origin reference`)
#   --no-estimate  skip the short speed run that estimates the time
#
# Before starting it times 2 epochs of 2,048 images at the recipe's batch (cifarpipe bench speed) and prints the
# estimate. Every line dvc and the stages print goes, stamped with the UTC time, to DIR/reference_run.log (the train
# stage prints one line per epoch). At the end it prints the figures the README's first table takes.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
rev=HEAD dir=$HOME/cifarpipe-reference archive="" remote="" estimate=yes
while [ $# -gt 0 ]; do
  case $1 in
    --rev) rev=$2; shift 2 ;;
    --dir) dir=$2; shift 2 ;;
    --archive) archive=$2; shift 2 ;;
    --remote) remote=$2; shift 2 ;;
    --no-estimate) estimate=no; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "error: unknown argument $1 (bash benchmarks/reference_run.sh --help lists them)" >&2; exit 2 ;;
  esac
done
log=$dir/reference_run.log
stamp() { while IFS= read -r line; do printf '%s %s\n' "$(date -u +%FT%TZ)" "$line"; done; }
say() { echo "$*" | stamp | tee -a "$log"; }

# a git identity for dvc exp run's commit (a fresh machine has none), unless the user has one
export GIT_AUTHOR_NAME=${GIT_AUTHOR_NAME:-reference run} GIT_AUTHOR_EMAIL=${GIT_AUTHOR_EMAIL:-reference@cifarpipe.invalid}
export GIT_COMMITTER_NAME=${GIT_COMMITTER_NAME:-reference run} GIT_COMMITTER_EMAIL=${GIT_COMMITTER_EMAIL:-reference@cifarpipe.invalid}
export DVC_NO_ANALYTICS=1 PYTHONUNBUFFERED=1 TQDM_DISABLE=1

if [ -d "$dir/.git" ]; then
  resumed=yes
else
  resumed=no
  sha=$(git -C "$here" rev-parse --verify "$rev^{commit}") || { echo "error: no revision $rev in $here" >&2; exit 2; }
  git clone -q --no-checkout "$here" "$dir"
  git -C "$dir" checkout -q -B main "$sha"
fi
cd "$dir"
mkdir -p "$(dirname "$log")" && touch "$log"
say "reference run in $dir at $(git rev-parse --short HEAD) ($(git log -1 --format=%s | cut -c1-80)); resumed: $resumed"

if [ ! -f .venv/.installed ]; then
  say "installing the environment into $dir/.venv (about a minute)"
  python3 scripts/install.py --venv .venv --quiet >>"$log" 2>&1 || { say "error: the install failed; see $log"; exit 1; }
  touch .venv/.installed
fi
export PATH=$dir/.venv/bin:$PATH

if [ -z "$archive" ]; then
  archive=$HOME/cifar10-proxy/cifar-10-python.tar.gz
  if [ ! -f "$archive.md5" ]; then
    say "building the proxy archive into $HOME/cifar10-proxy (about 30 s)"
    python "$here/../shared/cifar10-proxy/make_archive.py" "$HOME/cifar10-proxy" >>"$log" 2>&1
  fi
fi
[ -f "$archive" ] || { echo "error: no archive at $archive (give --archive PATH)" >&2; exit 2; }
archive=$(cd "$(dirname "$archive")" && pwd)/$(basename "$archive")
md5=$(if [ -f "$archive.md5" ]; then tr -d '[:space:]' < "$archive.md5"; else md5sum "$archive" | cut -d' ' -f1; fi)
cpu=$(lscpu | sed -n 's/^Model name: *//p')
flags=$(grep -o -w -E 'amx_bf16|avx512_bf16|avx2' /proc/cpuinfo | sort -u | tr '\n' ' ')
say "machine: $cpu, $(nproc) cores, flags: ${flags:-none of amx_bf16 avx512_bf16 avx2}; $(python -c 'import torch; print("torch", torch.__version__)')"

if [ "$estimate" = yes ] && [ "$resumed" = no ]; then
  say "estimating: 2 epochs of 2,048 images at the recipe's batch (cifarpipe bench speed)"
  line=$(nice -n 19 cifarpipe bench speed --archive "$archive" --train-subset 2048 --test-subset 512 \
         --set schedule.epochs=2 --set schedule.peak_epoch=1 --lr 0.005 2>/dev/null | grep '"run": "cifarpipe"')
  python - "$line" <<'EOF' | stamp | tee -a "$log"
import json, sys
import yaml
r, p = json.loads(sys.argv[1]), yaml.safe_load(open("params.yaml"))
ips, epochs, iters = r["images_per_s"], p["schedule"]["epochs"], p["lr_find"]["iterations"]
train_min = (epochs * 50000 + iters * p["train"]["batch_size"]) / ips / 60
print(f"estimate: {ips} images/s training in {r['device']} -> the range test and {epochs} epochs of 50,000 "
      f"images take about {train_min:.0f} min, plus roughly a tenth more for the test passes, evaluate, "
      f"robustness and export, on an idle machine")
EOF
fi

say "dvc exp run -n reference (nice 19): data.url=file://$archive, every other param as params.yaml ships it"
if dvc exp list --name-only 2>/dev/null | grep -qx reference; then
  say "the experiment 'reference' exists already: nothing to run"
else
  set +e
  nice -n 19 dvc exp run -n reference -S "data.url=file://$archive" -S "data.md5=$md5" 2>&1 | stamp | tee -a "$log"
  status=${PIPESTATUS[0]}
  set -e
  [ "$status" -eq 0 ] || { say "dvc exp run stopped with exit status $status; run this script again with --dir $dir to resume"; exit "$status"; }
fi

python - <<'EOF' | stamp | tee -a "$log"
import json
from pathlib import Path
def read(p):
    return json.loads(Path(p).read_text()) if Path(p).exists() else {}
lr, verdict, ev = read("metrics/lr_pick.json"), read("metrics/verdict.json"), read("dvclive/evaluate/seed0/metrics.json")
tr, rob, ex = read("dvclive/train/seed0/metrics.json"), read("metrics/robustness/seed0.json"), read("metrics/export.json")
print("LRMAX", lr.get("lr_max"), "LRMIN", lr.get("lr_min"), "source", lr.get("source"))
print("train:", {k: tr.get(k) for k in ("train_s", "epoch_s", "precision", "epochs")})
print("evaluate:", json.dumps(ev, sort_keys=True)[:1500])
print("verdict:", json.dumps(verdict, sort_keys=True)[:1500])
print("robustness:", json.dumps({k: v for k, v in rob.items() if not isinstance(v, (dict, list))})[:800])
print("export:", json.dumps(ex)[:800])
EOF
grep -o 'epoch=[0-9]* .*epoch_s=[0-9.]*' "$log" | tail -n 30 || true  # the train stage's line per epoch

if [ -n "$remote" ]; then
  dvc remote add -f -d reference-remote "$remote" >/dev/null
  dvc exp push origin reference 2>&1 | stamp | tee -a "$log"
fi
say "done: $log"
