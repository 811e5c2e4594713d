"""The pull-request workflow as GitHub reads it today: actionlint (pinned in requirements-dev.txt), running
the pinned shellcheck on the run: scripts, finds nothing in .github/workflows/, and every action a workflow
uses is one whose metadata actionlint holds, so that its check of the action's runtime (node24) covers it."""
import re
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import ROOT

BIN = str(Path(sys.executable).parent)
ACTIONLINT, SHELLCHECK = shutil.which("actionlint", path=BIN), shutil.which("shellcheck", path=BIN)
WORKFLOWS = sorted((ROOT / ".github/workflows").glob("*.y*ml"))
USES = re.compile(r"^\s*(?:-\s+)?uses:\s*([^\s#]+)", re.MULTILINE)


def actionlint(*args: str, cwd=ROOT, stdin: str | None = None) -> subprocess.CompletedProcess:
    assert ACTIONLINT and SHELLCHECK, "no actionlint or shellcheck here: python3 scripts/install.py --dev"
    return subprocess.run([ACTIONLINT, "-no-color", "-oneline", f"-shellcheck={SHELLCHECK}", "-pyflakes=",
                           *args], cwd=cwd, input=stdin, capture_output=True, text=True, timeout=120)


def test_actionlint_finds_nothing_in_the_workflows():
    assert WORKFLOWS
    proc = actionlint("-config-file", ".github/actionlint.yaml",
                      *[str(path.relative_to(ROOT)) for path in WORKFLOWS])
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")


def test_every_action_the_workflows_use_is_one_whose_runtime_actionlint_checks():
    used = sorted({action for path in WORKFLOWS for action in USES.findall(path.read_text())})
    assert used
    for action in used:  # actionlint lists an action's inputs only when it holds the action's metadata
        probe = ("on: push\njobs:\n  probe:\n    runs-on: ubuntu-latest\n    steps:\n"
                 f"      - uses: {action}\n        with:\n          not-an-input: x\n")
        said = actionlint("-stdin-filename", "probe.yaml", "-", stdin=probe).stdout
        assert f'input "not-an-input" is not defined in action "{action}"' in said, (action, said)


def test_actionlint_reports_an_action_on_a_retired_runtime_and_an_undeclared_runner_label(tmp_path):
    """The check can fail: the workflow's job as it stood (checkout@v4 on node20; the gpu label, which no
    configuration declares in an empty folder) gives both findings."""
    old = ("on: push\njobs:\n  train:\n    runs-on: [self-hosted, gpu]\n    steps:\n"
           "      - uses: actions/checkout@v4\n")
    said = actionlint("-stdin-filename", "old.yaml", "-", cwd=tmp_path, stdin=old).stdout
    assert 'runtime "node20" is deprecated' in said and 'label "gpu" is unknown' in said
