#!/usr/bin/env bash
# The measurements a GPU session owes the project (docs/benchmarks.md, "Results"). Several steps per device
# call (a call has 10 minutes; each fresh machine costs a minute or more to start, and one stays warm 30 s).
#
# On this machine first, once (about 2 minutes; .devkit ~24 MB + .gpu ~26 MB of the 64 MiB that travel):
#     bash ../shared/device-kit/build.sh .devkit && rm -f .devkit/vl_convert_python-*.whl && mkdir -p .gpu .git/info \
#       && cp ../shared/cifar10-proxy/{cifar10_jpeg.npz.xz,make_archive.py,decode_npz.py} ../shared/peers/seed_baseline.py .gpu/ \
#       && mkdir -p .gpu/debs && (cd .gpu/debs && apt-get download git make && mv git_*.deb git.deb && mv make_*.deb make.deb) \
#       && printf '/.devkit/\n/.gpu/\n' >> .git/info/exclude
# (vl-convert, 32 MB, only renders the pull-request report's PNGs; the steps below skip the test that needs it.
# git and make, 7.7 MB of Debian packages, are unpacked there only if the machine lacks them: dvc needs git.)
# Then through the device tool, carry [".devkit", ".gpu"], timeout_s 600, one command each, the most wanted figures
# first in each (a call stopped at its limit still returns $OUT, the logs of the steps it finished):
#     bash benchmarks/gpu_session.sh repro seeds profile  # default dvc repro, seconds per stage; 5 seeds; step profile
#     bash benchmarks/gpu_session.sh bench repeat       # 3 seeds vs the seed peer; repeatability (~6 min)
#     bash benchmarks/gpu_session.sh tests resnet18     # the whole suite, gpu tests included; seed-resnet18 (~7 min)
# Issue them back to back (a machine stays warm 30 s; a new one costs a minute or more): about 20 of the 30 minutes
# (the minutes are estimates from the CPU dry run and the H100 figures in shared/: this has not run on a GPU yet).
# `gpu-tests` runs the CUDA tests alone (they are part of `tests`).
# Each step prints its figures and writes its log to $OUT/<step>.log. The first step of a call sets the machine
# up (wheels into /tmp/site, the proxy archive and npz in /tmp/proxy), about 40 s on a fresh one.
# Knobs: BENCH_SETS (';'-separated --set lists for `bench`); TEST_WORKERS (pytest-xdist, 8); SUBSET=N, a dry run of
# every step on N images on a CPU (with KIT and SITE naming a kit built for the Python there).
set -euo pipefail
[ $# -gt 0 ] || { echo "usage: gpu_session.sh STEP... (gpu-tests tests profile repro seeds resnet18 bench repeat)" >&2; exit 2; }
root=$(pwd)
out=${OUT:-/tmp/gpu_session_out}
mkdir -p "$out" && : > "$out/digest.log"
kit=${KIT:-.devkit}
site=${SITE:-/tmp/site}
BENCH_SETS=${BENCH_SETS:-"train.compile=false;train.compile=true train.compile_mode=reduce-overhead"}

setup() {
  if ! command -v git >/dev/null || ! command -v make >/dev/null; then  # dvc and the tests need git; seed-* need make
    mkdir -p /tmp/debroot && for f in .gpu/debs/*.deb; do dpkg -x "$f" /tmp/debroot; done
    export PATH=$PATH:/tmp/debroot/usr/bin  # after the machine's own tools
    if [ "$(command -v git)" = /tmp/debroot/usr/bin/git ]; then
      export GIT_EXEC_PATH=/tmp/debroot/usr/lib/git-core GIT_TEMPLATE_DIR=/tmp/debroot/usr/share/git-core/templates
    fi
  fi
  echo "git: $(command -v git) $(git --version); make: $(command -v make)"
  if [ ! -f "$site/.installed" ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --target "$site" "$kit"/*.whl && touch "$site/.installed"
  fi
  # the project's own package from the tree (no pip install -e here), and its `cifarpipe` command
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
  cp -r cifarpipe stages Makefile params.yaml quick-look.yaml dvc.yaml .dvcignore .gitignore /tmp/run/
  mkdir -p /tmp/run/.dvc && cp -r .dvc/config .dvc/.gitignore .dvc/plots /tmp/run/.dvc/
  (cd /tmp/run && git init -q -b main && python3 - "$url" "$md5" "${SUBSET:-}" <<'EOF'
import sys, yaml
p = yaml.safe_load(open("params.yaml"))
overrides = {"data.url": sys.argv[1], "data.md5": sys.argv[2]}
if sys.argv[3]:  # a dry run on a CPU: the quick look (quick-look.yaml) on a few images
    overrides.update(yaml.safe_load(open("quick-look.yaml")))
    overrides.update({"data.train_subset": int(sys.argv[3]), "data.test_subset": int(sys.argv[3])})
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

picked_lr() {  # that LRMAX alone on stdout: from the repro step on this machine, else from a range test run now
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
    gpu-tests)
      python3 -m pytest -q -p no:cacheprovider -m gpu tests ;;
    tests)  # the whole suite but what renders the pull-request report (Chromium and vl-convert, left out of the kit)
      python3 -m pytest -q -p no:cacheprovider -n "${TEST_WORKERS:-8}" --ignore=tests/test_review.py \
        --deselect tests/test_sharing.py::test_push_then_a_fresh_clone_pulls_every_output_and_reruns_nothing \
        --deselect tests/test_sharing.py::test_the_pull_request_script_reads_the_bases_seeds_from_the_remote_or_runs_them_saying_so \
        --deselect tests/test_seeds.py::test_the_report_compares_the_seed_groups_of_two_revisions tests ;;
    profile)
      for sets in "train.compile=false" "train.compile=true" "train.compile=true train.compile_mode=reduce-overhead"; do
        benchmark profile "$sets" ${SUBSET:+--steps 3 --warmup 2}
      done ;;
    repro)
      fresh_repo && timed_repro && save_picked_lr ;;
    seeds)  # after repro: the default run over five seeds (seed 0 is cached), its seconds and the aggregate's verdict
      [ -f /tmp/run/metrics/aggregate.json ] || { fresh_repo && (cd /tmp/run && dvc repro -q); }
      (cd /tmp/run && git add -A && git commit -qm "one seed" && start=$(date +%s) \
        && dvc exp run -q -S 'train.seeds=[0,1,2,3,4]' \
        && echo "{\"five seeds, seconds beyond the first\": $(( $(date +%s) - start ))}" \
        && echo "metrics/aggregate.json: $(python3 -c 'import json; a = json.load(open("metrics/aggregate.json")); print(json.dumps({k: a[k] for k in ("n", "test_acc", "target_verdict")}))')") ;;
    resnet18)
      fresh_repo && (cd /tmp/run && dvc repro -q lr_pick && git add -A && git commit -qm baseline \
        && start=$(date +%s) && make seed-resnet18 >/dev/null \
        && echo "{\"make seed-resnet18 seconds\": $(( $(date +%s) - start ))}" \
        && dvc exp show --md --no-pager --keep 'test_acc\.(mean|min|max)$|train_s\.mean|target_verdict|lr_max|model.name' --drop '.*') ;;
    bench)
      lr=$(picked_lr); echo "LRMAX from the default range test: $lr"
      IFS=';' read -ra variants <<< "$BENCH_SETS"
      for i in "${!variants[@]}"; do
        peer=(); [ "$i" = 0 ] && peer=(--peer .gpu/seed_baseline.py)  # the peer once, beside the first variant
        benchmark speed "${variants[$i]}" --lr "$lr" --seeds 0 1 2 ${peer[@]+"${peer[@]}"}
      done ;;
    repeat)
      lr=$(picked_lr)
      benchmark speed "${BENCH_SETS%%;*}" --lr "$lr" --seeds 0 0 0
      benchmark speed "${BENCH_SETS%%;*} train.deterministic=true" --lr "$lr" --seeds 0 0 ;;
    *) echo "unknown step $1" >&2; return 2 ;;
  esac
}

exec > >(tee -a "$out/session.log") 2>&1
setup
for step in "$@"; do
  echo "=== $step $(date +%T)"
  started=$(date +%s)
  set +e
  run_step "$step" 2>&1 | tee "$out/$step.log"
  rc=${PIPESTATUS[0]}
  set -e
  echo "=== $step rc=$rc in $(( $(date +%s) - started )) s" | tee -a "$out/digest.log"
  grep -h -E '^\{"(summary|stage|run|five seeds)|^\{"device"|^[0-9]+ seed\(s\): |^metrics/|^dvclive/|^LRMAX|^\| |passed|skipped|failed|error' "$out/$step.log" \
    | cut -c1-600 >> "$out/digest.log" || true
  cd "$root"
done
echo "=== digest (the figures of every step; whole logs in \$OUT)"
cat "$out/digest.log"
