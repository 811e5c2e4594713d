#!/usr/bin/env bash
# The measurements a GPU session owes the project (README "Results"), one step per device call (10 min each).
# On this machine first, once:
#     bash ../shared/device-kit/build.sh .devkit && mkdir -p .gpu && cp ../shared/cifar10-proxy/{cifar10_jpeg.npz.xz,*.py} \
#         ../shared/peers/seed_baseline.py .gpu/ && printf '/.devkit/\n/.gpu/\n' >> .git/info/exclude
# then, through the device tool, with carry [".devkit", ".gpu"]:
#     bash benchmarks/gpu_session.sh tests     # whole suite, gpu tests included
#     bash benchmarks/gpu_session.sh repro     # default dvc repro on the proxy: seconds per stage, LRMAX, accuracy
#     bash benchmarks/gpu_session.sh resnet18  # make seed-resnet18 the same way
#     bash benchmarks/gpu_session.sh bench     # 3 seeds against the seed peer, same data and machine
#     bash benchmarks/gpu_session.sh repeat    # 3 runs of one seed; deterministic on/off cost
# Each step sets itself up (wheels into /tmp/site, the proxy archive in /tmp/proxy) if the machine is fresh.
set -euo pipefail
step=${1:?usage: gpu_session.sh tests|repro|resnet18|bench|repeat}
root=$(pwd)

python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .devkit/*.whl 2>/dev/null || true
export PYTHONPATH=/tmp/site PATH=/tmp/site/bin:$PATH DVC_NO_ANALYTICS=1
if [ ! -f /tmp/proxy/cifar-10-python.tar.gz ]; then
  python3 .gpu/make_archive.py /tmp/proxy >/dev/null
  python3 .gpu/decode_npz.py .gpu/cifar10_jpeg.npz.xz /tmp/proxy >/dev/null
fi
url=file:///tmp/proxy/cifar-10-python.tar.gz
md5=$(cat /tmp/proxy/cifar-10-python.tar.gz.md5)
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
python3 -m cifarpipe.doctor

fresh_repo() {  # a git repo of the project pointed at the proxy archive, in /tmp/run
  rm -rf /tmp/run && mkdir -p /tmp/run
  cp -r cifarpipe stages scripts Makefile params.yaml dvc.yaml .dvcignore .gitignore /tmp/run/
  mkdir -p /tmp/run/.dvc && cp -r .dvc/config .dvc/plots /tmp/run/.dvc/
  cd /tmp/run && git init -q -b main && git add -A && git -c user.name=gpu -c user.email=gpu@x commit -qm run
  python3 - "$url" "$md5" <<'EOF'
import sys, yaml
p = yaml.safe_load(open("params.yaml"))
p["data"].update(url=sys.argv[1], md5=sys.argv[2])
yaml.safe_dump(p, open("params.yaml", "w"), sort_keys=False)
EOF
}

timed_repro() {  # dvc repro one stage at a time, printing seconds per stage
  for stage in download stats lr_find lr_pick train evaluate gradcam; do
    start=$(date +%s.%N)
    dvc repro -s -q "$stage"
    echo "{\"stage\": \"$stage\", \"seconds\": $(awk "BEGIN {print $(date +%s.%N) - $start}")}"
  done
  cat metrics/lr_range_test.json metrics/lr_find.json dvclive/train/metrics.json dvclive/evaluate/metrics.json
}

case $step in
  tests)
    python3 -m pytest -q -m gpu -p no:cacheprovider
    python3 -m pytest -q -p no:cacheprovider ;;
  repro)
    fresh_repo && timed_repro ;;
  resnet18)
    fresh_repo && dvc repro -q download stats && \
      time make seed-resnet18 && dvc exp show --md --keep 'test_acc|train_s|lr_max' --drop '.*' | head -20 ;;
  bench)
    python3 benchmarks/train_speed.py --npz /tmp/proxy/cifar10_uint8.npz --seeds 0 1 2 --peer .gpu/seed_baseline.py ;;
  repeat)
    python3 benchmarks/train_speed.py --npz /tmp/proxy/cifar10_uint8.npz --seeds 0 0 0
    python3 benchmarks/train_speed.py --npz /tmp/proxy/cifar10_uint8.npz --seeds 0 0 --set train.deterministic=true ;;
  *) echo "unknown step $step" >&2; exit 2 ;;
esac
cd "$root"
