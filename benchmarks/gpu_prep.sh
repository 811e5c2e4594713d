#!/usr/bin/env bash
#     bash benchmarks/gpu_prep.sh        # SHARED=DIR names the shared folder (default ../shared)
#
# Prepare, on this machine, what benchmarks/gpu_session.sh carries to the GPU machine (about 2 minutes):
#   .devkit  the Python 3.12 wheels the GPU image lacks (../shared/device-kit/build.sh over the runtime lock, the
#            frost photographs' pin and the gpu tests' pytest), less vl-convert (33 MB, for the report's PNGs,
#            which no GPU step draws); gpu_session.sh installs them with the one install (scripts/install.py);
#   .gpu     the proxy's compressed images and its two scripts, the peer script (the reference recipe as a plain script), and Debian's git (dvc needs
#            git; it is unpacked there only if the image lacks one).
# Both are ignored by git (.git/info/exclude). Checks that every wheel is for CPython 3.12 (one built here for
# another Python stops the whole install there) and that the tree and both folders fit the 64 MiB that travel.
# Then the device call: run, carry [".devkit", ".gpu"], timeout_s 560, command `bash benchmarks/gpu_session.sh`.
set -euo pipefail
for arg in "$@"; do  # -h, --help: the header above, before anything runs
  case $arg in -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;; esac
done
cd "$(dirname "$0")/.."
shared=${SHARED:-../shared}
if [ ! -d .devkit ]; then  # the kit script reads ./requirements.txt: the runtime lock, the frost photographs'
  kit=$(mktemp -d)         # pin and the gpu tests' pytest, each fetched without its dependencies
  { cat requirements.txt requirements-frost.txt
    grep -E '^(pytest|pytest-xdist|execnet|iniconfig|pluggy)==' requirements-dev.txt; } > "$kit/requirements.txt"
  (cd "$kit" && bash "$shared/device-kit/build.sh" "$OLDPWD/.devkit")
fi
rm -f .devkit/vl_convert_python-*.whl
mkdir -p .gpu/debs .git/info
cp -f "$shared"/cifar10-proxy/{cifar10_jpeg.npz.xz,make_archive.py,decode_npz.py} "$shared/peers/seed_baseline.py" .gpu/
ls .gpu/debs/git.deb >/dev/null 2>&1 || (cd .gpu/debs && apt-get download -qq git 2>/dev/null && mv git_*.deb git.deb)
for path in /.devkit/ /.gpu/; do grep -qx "$path" .git/info/exclude 2>/dev/null || echo "$path" >> .git/info/exclude; done

wrong=$(ls .devkit | grep -v -E -- '-(cp312-cp312|py3-none|py2\.py3-none|cp3[0-9]+-abi3)-' || true)
if [ -n "$wrong" ]; then echo "not for CPython 3.12, remove or rebuild: $wrong" >&2; exit 1; fi
tree=$(git ls-files -z --cached --others --exclude-standard | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1)
total=$(( tree + $(du -sb .devkit | cut -f1) + $(du -sb .gpu | cut -f1) ))
echo "$(ls .devkit/*.whl | wc -l) wheels; the tree, .devkit and .gpu make $(( total / 1048576 )) MiB of the 64 that travel"
[ "$total" -le $(( 64 * 1048576 )) ] || { echo "over 64 MiB: carry less" >&2; exit 1; }
