"""The locks resolve where cifarpipe runs, by uv (pinned in the dev lock) against PyPI, as dry runs: each lock
is what uv compiles from its sources; every pin of requirements.txt has a wheel for Colab's Pythons (3.12,
3.13; torch's stack left to Colab) and for Linux, macOS on Apple silicon and Windows (Python 3.11, the pins
whose markers hold there); the package's dependencies take Colab's torch. All at once: each is network-bound.
Skipped, saying so, only when the index cannot be reached."""
import os
import re
import shutil
import subprocess
import sys
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from conftest import ROOT
from test_environment import COMPILE, install_script, normalized

UV = shutil.which("uv", path=str(Path(sys.executable).parent))
INDEX = os.environ.get("UV_DEFAULT_INDEX") or os.environ.get("UV_INDEX_URL") or "https://pypi.org/simple"
# Pure-Python pins published as source distributions only: pip builds each on any platform, so the wheel
# checks leave them out (a test checks that the lock still pins each, so that this list cannot go stale)
SDIST_ONLY = {"antlr4-python3-runtime": "4.9.3", "grad-cam": "1.5.7"}
COLAB = {"python": "3.13", "torch": "2.11.0", "torchvision": "0.26.0"}  # Colab's runtime today
LINUX = "x86_64-manylinux_2_28"
# uv's name for each platform, and the environment that sets its macOS version (torch's wheels need 14)
PLATFORMS = {"linux": (LINUX, {}),
             "macos-arm64": ("aarch64-apple-darwin", {"MACOSX_DEPLOYMENT_TARGET": "14.0"}),
             "windows": ("x86_64-pc-windows-msvc", {})}


def uv(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    """uv with no configuration of this machine's, no Python downloads (the targets are named, not run)."""
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never", "UV_NO_CONFIG": "1", **(env or {})}
    return subprocess.run([UV, *args], cwd=cwd, capture_output=True, text=True, timeout=600, env=env)


def wheels_for(pins: Path, python: str, platform: str, env: dict | None = None):
    """A dry run: every requirement of `pins` whose markers hold for (`python`, `platform`), each with a wheel
    for it, as it stands (no dependencies resolved: the lock holds them)."""
    return uv("pip", "compile", "--no-deps", "--only-binary", ":all:", "--python-version", python,
              "--python-platform", platform, "--no-header", "--no-annotate", "--quiet", str(pins),
              cwd=pins.parent, env=env)


def lock_less(tmp: Path, name: str, pattern: str) -> Path:
    """requirements.txt less the pins whose names match `pattern`, written to tmp/name."""
    lines = [line for line in (ROOT / "requirements.txt").read_text().splitlines()
             if not ("==" in line and re.fullmatch(pattern, normalized(line.split("==")[0].strip())))]
    (tmp / name).write_text("\n".join(lines) + "\n")
    return tmp / name


def recompiled(tmp: Path) -> dict[str, str]:
    """Each lock as uv compiles it from a copy of its sources, the committed locks its preferences."""
    for name in ("pyproject.toml", "requirements.in", "requirements-dev.in", *COMPILE):
        shutil.copy2(ROOT / name, tmp / name)
    found = {}
    for lock, command in COMPILE.items():  # in order: the dev lock is constrained by the runtime lock
        proc = uv(*command.split()[1:], "--quiet", cwd=tmp)
        found[lock] = (tmp / lock).read_text() if proc.returncode == 0 else f"uv failed:\n{proc.stderr}"
    return found


@pytest.fixture(scope="module")
def resolved(tmp_path_factory):
    """Every resolution, run at once (each waits on the network): {check: uv's CompletedProcess}."""
    assert UV, "no uv next to this Python: python3 scripts/install.py --dev"
    try:
        urllib.request.urlopen(f"{INDEX.rstrip('/')}/uv/", timeout=20).close()
    except OSError as err:
        pytest.skip(f"the package index {INDEX} cannot be reached ({err}): the resolution checks need it")
    tmp = tmp_path_factory.mktemp("locks")
    for folder in ("compile", "colab", "platforms", "package"):
        (tmp / folder).mkdir()
    sdists = "|".join(map(re.escape, SDIST_ONLY))
    colab_pins = lock_less(tmp / "colab", "colab.txt", f"{install_script.TORCH_STACK}|{sdists}")
    platform_pins = lock_less(tmp / "platforms", "platforms.txt", sdists)
    (tmp / "colab/no-wheel.txt").write_text("numpy==1.26.4\n")  # cp312 wheels at most: must fail for 3.13
    (tmp / "package/colab-torch.txt").write_text(
        f"torch=={COLAB['torch']}\ntorchvision=={COLAB['torchvision']}\n")
    shutil.copy2(ROOT / "pyproject.toml", tmp / "package/pyproject.toml")
    calls = {f"python {v}": partial(wheels_for, colab_pins, v, LINUX) for v in ("3.12", COLAB["python"])}
    calls |= {name: partial(wheels_for, platform_pins, "3.11", target, env)
              for name, (target, env) in PLATFORMS.items()}
    calls["a pin without a wheel"] = partial(wheels_for, tmp / "colab/no-wheel.txt", COLAB["python"], LINUX)
    calls["the package with Colab's torch"] = partial(
        uv, "pip", "compile", "--python-version", COLAB["python"], "--python-platform", LINUX, "--no-header",
        "--no-annotate", "--quiet", "-c", "colab-torch.txt", "pyproject.toml", cwd=tmp / "package")
    calls["compile"] = partial(recompiled, tmp / "compile")
    with ThreadPoolExecutor(len(calls)) as pool:
        futures = {name: pool.submit(call) for name, call in calls.items()}
        return {name: future.result() for name, future in futures.items()}


def pins_in(out: str) -> dict[str, str]:
    return {normalized(Requirement(line).name): str(Requirement(line).specifier)[2:]
            for line in out.splitlines() if "==" in line}


@pytest.mark.parametrize("lock", COMPILE)
def test_each_lock_is_what_uv_compiles_from_its_sources(resolved, lock):
    assert resolved["compile"][lock] == (ROOT / lock).read_text(), \
        f"{lock} is not what `{COMPILE[lock]}` writes (edited by hand, or a source changed): rerun it"


@pytest.mark.parametrize("python", ["3.12", COLAB["python"]])
def test_every_pin_but_torchs_stack_has_a_wheel_for_colabs_python(resolved, python):
    proc = resolved[f"python {python}"]
    assert proc.returncode == 0, f"a pin of requirements.txt has no wheel for Python {python}:\n{proc.stderr}"
    got = pins_in(proc.stdout)
    assert "dvc" in got and "scipy" in got and not {"torch", "torchvision", "triton", *SDIST_ONLY} & set(got)


def test_the_check_fails_for_a_pin_without_a_wheel_for_the_python(resolved):
    proc = resolved["a pin without a wheel"]
    assert proc.returncode != 0 and "numpy==1.26.4 has no" in proc.stderr, proc.stderr


def test_the_sdist_only_exceptions_are_pins_of_the_lock():
    text = (ROOT / "requirements.txt").read_text()
    for name, version in SDIST_ONLY.items():
        assert re.search(rf"^{re.escape(name)}=={re.escape(version)}$", text, re.MULTILINE), \
            f"{name}=={version} is no longer pinned: take it out of SDIST_ONLY"


@pytest.mark.parametrize("platform", PLATFORMS)
def test_the_runtime_lock_installs_on_each_platform(resolved, platform):
    """The README's first command installs requirements.txt: on macOS and Windows torch comes without its CUDA
    libraries, which the markers keep to Linux."""
    proc = resolved[platform]
    assert proc.returncode == 0, f"requirements.txt does not install on {platform}:\n{proc.stderr}"
    got = pins_in(proc.stdout)
    assert got["torch"] == "2.14.1" and got["torchvision"] == "0.29.1" and "dvc" in got
    cuda = {name for name in got if re.fullmatch(r"triton|cuda-.*|nvidia-(?!ml-py$).*", name)}
    if platform == "linux":
        assert {"nvidia-cublas", "nvidia-cudnn-cu13", "triton"} <= cuda and "pywin32" not in got
    else:
        assert not cuda, f"{platform} would get Linux's CUDA libraries: {sorted(cuda)}"
    assert ("pywin32" in got) == (platform == "windows")


def test_the_packages_dependencies_take_colabs_torch(resolved):
    """Installing the package with its dependencies on Colab keeps torch 2.11.0 and torchvision 0.26.0."""
    proc = resolved["the package with Colab's torch"]
    assert proc.returncode == 0, proc.stderr
    got = pins_in(proc.stdout)
    assert (got["torch"], got["torchvision"]) == (COLAB["torch"], COLAB["torchvision"]) and "dvc" in got
