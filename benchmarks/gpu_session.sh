#!/usr/bin/env bash
# One device call of at most 9 minutes (timeout_s 560) that measures what a GPU session owes the project, the most
# wanted figure first (results go to docs/benchmarks.md and the README):
#   1. setup: the wheels and the proxy archive (under a minute);
#   2. repro: the default `dvc repro` on the whole proxy, 24 epochs: seconds per stage, the LRMAX the rule picked,
#      the test accuracy and the target verdict (the proxy scores about 3.3 points under the official data);
#   3. gpu-tests: the `gpu`-marked tests;
#   4. bench: `cifarpipe bench speed`, ours eager and ours compiled with CUDA graphs (reduce-overhead), two seeds
#      each, beside the peer script once: training seconds, accuracy, speed-up;
#   5. seeds, then profile, if the minutes allow: five seeds of the default run; the step profile.
# Each step appends its figures to $OUT/digest.log as it ends, so a call stopped at its limit still returns what it
# measured. A step starts only if its estimate fits in what is left of BUDGET_S (530 s by default). The estimates
# come from shared/ (an H100 trains the recipe in 13.4 s, the peer script in 43 s) and the CPU dry run; nothing
# here has run on a GPU yet.
#
# On this machine first, once (about 2 minutes): `bash benchmarks/gpu_prep.sh` builds .devkit (the wheels the
# image lacks) and .gpu (the proxy, the peer script, Debian's git, which is unpacked there only if the machine
# lacks one: dvc needs git), and checks that they fit the 64 MiB that travel.
# Then one device call: run, carry [".devkit", ".gpu"], timeout_s 560, command `bash benchmarks/gpu_session.sh`.
# Steps can be named to run only those (`bash benchmarks/gpu_session.sh bench`), in the order given.
# SUBSET=N: a dry run of every step on N images on a CPU (KIT and SITE name a kit built for the Python there).
set -euo pipefail
for arg in "$@"; do  # -h, --help: the header above, before anything runs
  case $arg in -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;; esac
done
root=$(pwd)
out=${OUT:-/tmp/gpu_session_out}
mkdir -p "$out" && : > "$out/digest.log"
kit=${KIT:-.devkit}
site=${SITE:-/tmp/site}
budget=${BUDGET_S:-530}
steps=("$@")
[ ${#steps[@]} -gt 0 ] || steps=(repro gpu-tests bench seeds profile)
declare -A estimate=([repro]=150 [gpu-tests]=120 [bench]=170 [seeds]=90 [profile]=60)  # seconds on a GPU

setup() {
  if ! command -v git >/dev/null && [ -f .gpu/debs/git.deb ]; then  # dvc and the tests need git
    mkdir -p /tmp/debroot && dpkg -x .gpu/debs/git.deb /tmp/debroot
    export PATH=$PATH:/tmp/debroot/usr/bin  # after the machine's own tools
    export GIT_EXEC_PATH=/tmp/debroot/usr/lib/git-core GIT_TEMPLATE_DIR=/tmp/debroot/usr/share/git-core/templates
  fi
  # without git, repro, gpu-tests and seeds fail; bench (given BENCH_LR, e.g. 0.005 from shared/lr-curves) and
  # profile still run
  echo "git: $(git --version 2>&1 || echo 'NONE: repro, the tests and dvc need it (bash benchmarks/gpu_prep.sh)')"
  if [ ! -f "$site/.installed" ]; then  # the one install, from the kit: offline, the machine's torch stays
    python3 scripts/install.py --quiet --wheels "$kit" --target "$site" && touch "$site/.installed"
  fi
  # the project's own package from the tree (no editable install here), and its `cifarpipe` command
  mkdir -p "$site/bin" && printf '#!/bin/sh\nexec python3 -m cifarpipe.tools.cli "$@"\n' > "$site/bin/cifarpipe" \
    && chmod +x "$site/bin/cifarpipe"
  export PYTHONPATH=$site:$root PATH=$site/bin:$PATH DVC_NO_ANALYTICS=1 PYTHONUNBUFFERED=1 TQDM_DISABLE=1
  # a git identity for the commits here and dvc exp run's (a fresh machine has none configured)
  export GIT_AUTHOR_NAME=${GIT_AUTHOR_NAME:-gpu-session} GIT_AUTHOR_EMAIL=${GIT_AUTHOR_EMAIL:-gpu@example.com}
  export GIT_COMMITTER_NAME=${GIT_COMMITTER_NAME:-gpu-session} GIT_COMMITTER_EMAIL=${GIT_COMMITTER_EMAIL:-gpu@example.com}
  [ -f /tmp/proxy/cifar10_uint8.npz ] || python3 .gpu/decode_npz.py .gpu/cifar10_jpeg.npz.xz /tmp/proxy >/dev/null
  [ -f /tmp/proxy/cifar-10-python.tar.gz.md5 ] || python3 .gpu/make_archive.py /tmp/proxy >/dev/null
  url=file:///tmp/proxy/cifar-10-python.tar.gz
  md5=$(tr -d '[:space:]' < /tmp/proxy/cifar-10-python.tar.gz.md5)
  dry=()  # SUBSET: a dry run of the script on a CPU, on a few images
  if [ -n "${SUBSET:-}" ]; then dry=(--train-subset "$SUBSET" --test-subset "$SUBSET" --set train.batch_size=64
                                     --set schedule.epochs=6); fi
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || echo "no nvidia-smi"
  python3 -c 'import torch, dvc, albumentations, pytorch_grad_cam, torch_lr_finder; print("torch", torch.__version__, "cuda", torch.version.cuda, "dvc", dvc.__version__)'
}

fresh_repo() {  # a git repo of the project in /tmp/run, its params pointed at the proxy archive
  rm -rf /tmp/run && mkdir -p /tmp/run
  cp -r cifarpipe stages Makefile params.yaml quick-look.yaml smoke.yaml dvc.yaml .dvcignore .gitignore /tmp/run/
  mkdir -p /tmp/run/.dvc && cp -r .dvc/config .dvc/.gitignore .dvc/plots /tmp/run/.dvc/
  (cd /tmp/run && git init -q -b main && python3 - "$url" "$md5" "${SUBSET:-}" <<'EOF'
import sys, yaml
p = yaml.safe_load(open("params.yaml"))
overrides = {"data.url": sys.argv[1], "data.md5": sys.argv[2]}
if sys.argv[3]:  # a dry run on a CPU: the quick look (quick-look.yaml) on a few images
    overrides.update(yaml.safe_load(open("quick-look.yaml")))
    overrides.update({"data.train_subset": int(sys.argv[3]), "data.test_subset": int(sys.argv[3])})
try:  # ImageMagick's library is a system package the GPU image may lack: score the other corruptions then
    import wand.image  # noqa: F401
except ImportError:
    overrides["corrupt.corruptions"] = [c for c in p["corrupt"]["corruptions"] if c not in ("motion_blur", "snow")]
    print("no ImageMagick library here: motion_blur and snow left out of the corrupted sets", file=sys.stderr)
for dotted, value in overrides.items():
    group, key = dotted.split(".", 1)
    p[group][key] = value
yaml.safe_dump(p, open("params.yaml", "w"), sort_keys=False)
EOF
  git add -A && git commit -qm run)
}

timed_repro() {  # dvc repro stage by stage in /tmp/run (dvc.yaml lists them in order), printing the seconds of each
  (cd /tmp/run
  for stage in $(dvc stage list --name-only); do
    start=$(date +%s.%N)
    dvc repro -s -q "$stage"
    echo "{\"stage\": \"$stage\", \"seconds\": $(awk "BEGIN {print $(date +%s.%N) - $start}")}"
  done
  # one revision, the workspace (DVC keys it "" or "workspace" by version)
  dvc metrics show --json | python3 -c 'import json, sys
(workspace,) = json.load(sys.stdin).values()
for path, m in workspace["data"].items(): print(path + ": " + json.dumps(m["data"]))')
}

save_picked_lr() {  # LRMAX that the default params' range test picked in /tmp/run, kept for bench and repeat
  python3 -c 'import json; print(json.load(open("/tmp/run/metrics/lr_pick.json"))["lr_max"])' > /tmp/default_lr
}

picked_lr() {  # that LRMAX alone on stdout: BENCH_LR if set, else the repro step's, else a range test's run now
  if [ -n "${BENCH_LR:-}" ]; then echo "$BENCH_LR"; return; fi
  [ -f /tmp/default_lr ] || { fresh_repo && (cd /tmp/run && dvc repro -q lr_pick) && save_picked_lr; } >&2
  cat /tmp/default_lr
}

benchmark() {  # cifarpipe bench <speed|profile> on the proxy npz with space-separated param overrides, then its own args
  local bench=$1 sets=$2; shift 2
  local args=()
  for s in $sets; do args+=(--set "$s"); done
  cifarpipe bench "$bench" --npz /tmp/proxy/cifar10_uint8.npz ${dry[@]+"${dry[@]}"} ${args[@]+"${args[@]}"} "$@"
}

run_step() {
  case $1 in
    repro)
      fresh_repo && timed_repro && save_picked_lr ;;
    gpu-tests)
      # --dist load: the gpu tests share one file, which pyproject's loadfile would give to a single worker
      python3 -m pytest -q -p no:cacheprovider -m gpu -n 4 --dist load tests ;;
    bench)  # ours eager beside the peer script, then ours compiled with CUDA graphs; two seeds each
      lr=$(picked_lr); echo "LRMAX from the default range test: $lr"
      benchmark speed "compute.compile=false" --lr "$lr" --seeds 0 1 --peer .gpu/seed_baseline.py | tee /tmp/eager.jsonl
      benchmark speed "compute.compile=true compute.compile_mode=reduce-overhead" --lr "$lr" --seeds 0 1 \
        | tee /tmp/compiled.jsonl
      python3 -c 'import json  # the compiled run against the same run of the peer script
eager, compiled = ([json.loads(l) for l in open(f) if l.startswith("{")][-1]
                   for f in ("/tmp/eager.jsonl", "/tmp/compiled.jsonl"))
peer = eager.get("peer_train_s")  # absent when the peer script failed (its log says why)
print(json.dumps({"summary": "speed-up over the peer script", "peer_train_s": peer,
                  "eager_train_s": eager["median_train_s"], "compiled_train_s": compiled["median_train_s"],
                  "eager": eager.get("speedup"), "compiled": peer and round(peer / compiled["median_train_s"], 2)}))' ;;
    seeds)  # after repro: the default run over five seeds (seed 0 is cached), its seconds and the verdict
      [ -f /tmp/run/metrics/verdict.json ] || { fresh_repo && (cd /tmp/run && dvc repro -q); }
      (cd /tmp/run && git add -A && git commit -qm "one seed" && start=$(date +%s) \
        && dvc exp run -q -S 'train.seeds=[0,1,2,3,4]' \
        && echo "{\"five seeds, seconds beyond the first\": $(( $(date +%s) - start ))}" \
        && echo "metrics/verdict.json: $(tr -d '\n ' < metrics/verdict.json)") ;;
    profile)
      benchmark profile "compute.compile=false" ${SUBSET:+--steps 3 --warmup 2} ;;
    *) echo "unknown step $1 (repro gpu-tests bench seeds profile)" >&2; return 2 ;;
  esac
}

exec > >(tee -a "$out/session.log") 2>&1
start_all=$(date +%s)
setup
echo "=== setup done in $(( $(date +%s) - start_all )) s" | tee -a "$out/digest.log"
for step in "${steps[@]}"; do
  left=$(( budget - ($(date +%s) - start_all) ))
  if [ -z "${SUBSET:-}" ] && [ "${estimate[$step]:-0}" -gt "$left" ]; then
    echo "=== $step skipped: about ${estimate[$step]} s, $left s left of $budget" | tee -a "$out/digest.log"
    continue
  fi
  echo "=== $step $(date +%T)"
  started=$(date +%s)
  set +e
  run_step "$step" 2>&1 | tee "$out/$step.log"
  rc=${PIPESTATUS[0]}
  set -e
  echo "=== $step rc=$rc in $(( $(date +%s) - started )) s" | tee -a "$out/digest.log"
  grep -h -E '^\{"(summary|stage|run|five seeds)|^\{"device"|^[0-9]+ seed\(s\): |^metrics/|^LRMAX|passed|skipped|failed|error' \
    "$out/$step.log" | cut -c1-700 >> "$out/digest.log" || true
  cd "$root"
done
echo "=== digest (the figures of every step; whole logs in \$OUT)"
cat "$out/digest.log"
