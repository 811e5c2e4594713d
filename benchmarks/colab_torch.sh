#!/usr/bin/env bash
#     bash benchmarks/colab_torch.sh     # VENV=DIR (default /tmp/colab-torch-venv), DATA=ARCHIVE, OUT=DIR
#
# The smoke run under the oldest torch pair cifarpipe states it runs with, Colab's (pyproject.toml's floors:
# torch 2.11, torchvision 0.26; TORCH=X.Y and VISION=X.Y pick another pair), on this machine's CPU:
#   1. a venv of its own (VENV) with the one install (python3 scripts/install.py --venv VENV: the runtime lock,
#      the frost photographs, cifarpipe), then that pair from PyPI in place of the pinned one, without its
#      dependencies: it is a CUDA 13 build, like the pinned pair, and the lock's CUDA 13 libraries serve it
#      (without them it does not import: libcudnn.so.9); pulling in its own would add gigabytes;
#   2. the README's smoke run, `dvc exp run -n smoke $(cifarpipe overrides quick-look.yaml smoke.yaml)`, in a fresh
#      clone of this checkout's HEAD, on DATA: by default the proxy archive (~/cifar10-proxy, which
#      ../shared/cifar10-proxy/make_archive.py writes), else a synthetic one (tests/synthetic_cifar.py);
#   3. its verdict line, printed last and written to $OUT/colab_torch.txt with the versions it ran
#      (docs/dependencies.md keeps it).
# About 1 GB to download once (torch's wheel) beside the one install, then the smoke run: minutes on 2 cores.
set -euo pipefail
for arg in "$@"; do  # -h, --help: the header above, before anything runs
  case $arg in -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;; esac
done
root=$(cd "$(dirname "$0")/.." && pwd)
venv=${VENV:-/tmp/colab-torch-venv}
out=${OUT:-/tmp/colab_torch_out}
floor() { sed -nE "s/^ *\"$1>=([0-9.]+)\".*/\1/p" "$root/pyproject.toml"; }
torch_version=${TORCH:-$(floor torch)}
vision_version=${VISION:-$(floor torchvision)}
[ -n "$torch_version" ] && [ -n "$vision_version" ] || { echo "no torch floor in pyproject.toml" >&2; exit 1; }
mkdir -p "$out"

[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
python3 "$root/scripts/install.py" --venv "$venv" --quiet
"$venv/bin/python" -m pip install -q --no-deps "torch==$torch_version" "torchvision==$vision_version"

work=$(mktemp -d)
git clone -q "$root" "$work/repo"
cd "$work/repo"
export PATH="$venv/bin:$PATH" DVC_NO_ANALYTICS=1 TQDM_DISABLE=1
export GIT_AUTHOR_NAME=${GIT_AUTHOR_NAME:-colab-torch} GIT_AUTHOR_EMAIL=${GIT_AUTHOR_EMAIL:-colab-torch@example.com}
export GIT_COMMITTER_NAME=${GIT_COMMITTER_NAME:-colab-torch}
export GIT_COMMITTER_EMAIL=${GIT_COMMITTER_EMAIL:-colab-torch@example.com}
archive=${DATA:-$HOME/cifar10-proxy/cifar-10-python.tar.gz}
if [ -f "$archive" ]; then
  md5=$(python -c 'import hashlib, sys; print(hashlib.md5(open(sys.argv[1], "rb").read()).hexdigest())' "$archive")
else
  echo "no archive at $archive: a synthetic one (5,000 training and 1,000 test images)"
  archive="$work/cifar-10-python.tar.gz"
  md5=$(PYTHONPATH=tests python -c 'import sys; from synthetic_cifar import write_archive
print(write_archive(sys.argv[1], n_train=5000, n_test=1000))' "$archive")
fi
cifarpipe doctor | tee "$out/doctor.txt"
cifarpipe doctor --check
# shellcheck disable=SC2046  # the overrides are words, as the README types them
dvc exp run -n smoke $(cifarpipe overrides quick-look.yaml smoke.yaml) -S "data.url=file://$archive" \
  -S "data.md5=$md5"
ran=$(python -c 'import platform, torch, torchvision
print(f"torch {torch.__version__}, torchvision {torchvision.__version__}, Python {platform.python_version()}")')
verdict=$(python -c 'import json; print(json.load(open("metrics/aggregate.json"))["verdict_line"])')
printf '%s (%s, %s): %s\n' "$ran" "$(git -C "$root" rev-parse --short HEAD)" "$(basename "$archive")" "$verdict" \
  | tee "$out/colab_torch.txt"
