"""The pull-request workflow run as GitHub runs it: every `run:` step of .github/workflows/*.yaml with bash and
GitHub's default options (`bash --noprofile --norc -eo pipefail`), in order, with the job's and the step's env.

`actions/checkout` is a clone of a test repository at a pull request's head, with origin/main behind it; `gh`
is a stub on PATH that records what it is asked to post; everything else is real: the one install into a fresh
venv (from pip's cache), the smoke network on a tiny archive (file://), the rounds of seeds, the report, the
pictures pushed to the origin's branch pr-reports, and the DVC remote the last step pushes to.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import PARAMS_YAML, ROOT, TINY_PARAMS, set_params, tiny_archive_in

pytestmark = pytest.mark.slow
WORKFLOW = ROOT / ".github/workflows/train-and-report.yaml"
PR_NUMBER, REPOSITORY = "7", "owner/cifarpipe"
# the rounds, small: 2 seeds a side, then 3 (the tiny network's verdict is rarely decided at 2)
ROUNDS = {"noise.first_seeds": 2, "noise.round_seeds": 1, "noise.max_seeds": 3}
GH_STUB = """#!/usr/bin/env bash
# gh as the workflow calls it: record the arguments and the body posted; --edit-last fails with no comment yet
set -eu
log="$GH_STUB_LOG"
printf '%s\\n' "$*" >> "$log/calls"
if [ "$1 $2" = "pr comment" ]; then
  body=""; edit=""
  while [ $# -gt 0 ]; do case $1 in --body-file) body=$2; shift 2 ;; --edit-last) edit=1; shift ;; *) shift ;; esac; done
  if [ -n "$edit" ] && [ ! -f "$log/posted.md" ]; then echo "no comments found for current user" >&2; exit 1; fi
  cp "$body" "$log/posted.md"
fi
"""


def git(*args, cwd) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def expression(text: str, context: dict) -> str:
    """A `${{ ... }}` expression of the forms the workflow uses; any other fails the test, to be taught here."""
    text = text.strip()
    if text in context:
        return context[text]
    found = re.fullmatch(r"(\S+) \|\| '([^']*)'", text)
    if found:
        return context.get(found.group(1)) or found.group(2)
    found = re.fullmatch(r"(\S+) == '([^']*)'", text)
    if found:
        return "true" if context.get(found.group(1)) == found.group(2) else ""
    raise AssertionError(f"the workflow uses an expression this test does not evaluate: {text}")


def evaluated(value, context: dict) -> str:
    return re.sub(r"\$\{\{(.*?)\}\}", lambda m: expression(m.group(1), context), str(value))


def runner_env(home: Path, stubs: Path, job_env: dict) -> dict:
    """A runner's environment: the system's tools (not this suite's venv), gh's stub, GitHub's variables."""
    suite_bin = str(Path(sys.executable).parent)
    path = [p for p in os.environ["PATH"].split(os.pathsep) if p != suite_bin]
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTEST_CURRENT_TEST")}
    (home / "temp").mkdir(parents=True)
    for name in ("path", "env"):
        (home / f"github_{name}").touch()
    return {**env, **job_env, "PATH": os.pathsep.join([str(stubs), *path]), "CI": "true", "GITHUB_ACTIONS": "true",
            "GITHUB_REPOSITORY": REPOSITORY, "GITHUB_SERVER_URL": "https://github.com",
            "GITHUB_EVENT_NAME": "pull_request", "RUNNER_TEMP": str(home / "temp"),
            "GITHUB_PATH": str(home / "github_path"), "GITHUB_ENV": str(home / "github_env"),
            "GH_STUB_LOG": str(home / "gh"), "DVC_NO_ANALYTICS": "1"}


def project_into(dest: Path) -> None:
    """What a clone of this checkout holds (tracked files, and new ones git does not ignore), as they stand."""
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout.split()
    for name in listed:
        if (ROOT / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(PARAMS_YAML if name == "params.yaml" else ROOT / name, dest / name)


@pytest.fixture(scope="module")
def pull_request(tmp_path_factory):
    """(origin, the pull request's head, the DVC remote): main is the project on a tiny archive with a DVC
    remote; the pull request turns cutout off."""
    root = tmp_path_factory.mktemp("workflow")
    origin, main, remote = root / "origin.git", root / "main", root / "dvc-remote"
    md5 = tiny_archive_in(root / "www")
    git("init", "-q", "--bare", "-b", "main", str(origin), cwd=root)
    main.mkdir()
    project_into(main)
    set_params(main, {"data.url": (root / "www/cifar-10-python.tar.gz").as_uri(), "data.md5": md5,
                      **TINY_PARAMS, **ROUNDS})
    git("init", "-q", "-b", "main", cwd=main)
    subprocess.run([sys.executable, "-m", "dvc", "remote", "add", "-d", "shared", str(remote)], cwd=main,
                   check=True, capture_output=True)
    for args in (["add", "-A"], ["commit", "-qm", "the project"], ["remote", "add", "origin", str(origin)],
                 ["push", "-q", "origin", "main"], ["checkout", "-q", "-b", "no-cutout"]):
        git(*args, cwd=main)
    set_params(main, {"augment.cutout": 0})
    git("commit", "-qam", "cutout off", cwd=main)
    git("push", "-q", "origin", "no-cutout", cwd=main)
    return origin, git("rev-parse", "HEAD", cwd=main), remote


def run_workflow(workflow: Path, origin: Path, head: str, home: Path) -> tuple[Path, str]:
    """Every step of the workflow's one job, in order; returns (the workspace, the steps' output)."""
    spec = yaml.safe_load(workflow.read_text())
    (job,) = spec["jobs"].values()
    context = {"github.token": "test-token", "secrets.GITHUB_TOKEN": "test-token",
               "github.event.pull_request.number": PR_NUMBER,
               "github.event_name": "pull_request", "inputs.seeds": ""}
    stubs = home / "stubs"
    stubs.mkdir(parents=True)
    (stubs / "gh").write_text(GH_STUB)
    (stubs / "gh").chmod(0o755)
    (home / "gh").mkdir()
    env = runner_env(home, stubs, {k: evaluated(v, context) for k, v in spec.get("env", {}).items()})
    workspace, said = home / "workspace", []
    for step in job["steps"]:
        if "uses" in step:
            assert step["uses"].startswith("actions/checkout@"), f"no stand-in for {step['uses']}"
            git("clone", "-q", str(origin), str(workspace), cwd=home)
            git("checkout", "-q", head, cwd=workspace)
            continue
        if "if" in step and not evaluated("${{ " + step["if"] + " }}", context):
            continue
        script = home / "step.sh"
        script.write_text(evaluated(step["run"], context))
        step_env = {**env, **{k: evaluated(v, context) for k, v in step.get("env", {}).items()}}
        extra = (home / "github_path").read_text().split()
        step_env["PATH"] = os.pathsep.join([*reversed(extra), step_env["PATH"]])
        proc = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)], cwd=workspace,
                              env=step_env, capture_output=True, text=True, timeout=1500)
        said.append(f"## {step.get('name', step['run'][:40])}\n{proc.stdout}{proc.stderr}")
        assert proc.returncode == 0, "\n".join(said)[-6000:]
    return workspace, "\n".join(said)


def test_the_workflow_posts_the_verdict_of_the_rounds_with_its_pictures(pull_request, tmp_path):
    origin, head, remote = pull_request
    workspace, said = run_workflow(WORKFLOW, origin, head, tmp_path)
    posted = (tmp_path / "gh/posted.md").read_text()
    calls = (tmp_path / "gh/calls").read_text().splitlines()
    assert calls[-1].startswith(f"pr comment {PR_NUMBER} --body-file ")
    assert posted.startswith("# cifarpipe report: this change vs `")
    assert "## Verdicts" in posted and "- **change**: test accuracy" in posted
    rounds = re.search(r"\*\*Seeds in rounds\*\* \(in rounds of 2, 3 seeds a side, pocock spending\): "
                       r"test accuracy \*\*?(\w+)\*?\*? at look (\d) of 2 \((\d) seeds a side\)", posted)
    assert rounds, posted[:3000]
    call, look, seeds = rounds.groups()
    assert call in ("better", "worse", "equivalent", "undecided") and int(seeds) == int(look) + 1
    assert f"- the verdict cost {seeds} + {seeds} trainings" in posted
    assert "the sides' correlation seed by seed:" in posted
    # the pictures: on the origin's branch pr-reports, linked from the comment at that commit
    pictures = git("ls-tree", "-r", "--name-only", "pr-reports", cwd=origin).split()
    assert f"{PR_NUMBER}/{head}/test_accuracy_over_the_seeds.png" in pictures
    commit = git("rev-parse", "pr-reports", cwd=origin)
    link = f"https://github.com/{REPOSITORY}/blob/{commit}/{PR_NUMBER}/{head}/test_accuracy_over_the_seeds.png?raw=true"
    assert f"]({link})" in posted and "](report_images/" not in posted
    # round 2 trained only the third seed on each side: the first two came from DVC's caches
    second = said[said.index("round of 3 seeds a side: change"):]
    assert "Running stage 'train@2'" in second and "Running stage 'train@0'" not in second
    # the last step kept the runs, the run cache included, on the DVC remote
    assert any((remote / "runs").rglob("*")) and any((remote / "files").rglob("*"))
    assert json.loads((workspace / "report.json").read_text())["seeds"] == int(seeds)
