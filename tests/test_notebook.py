"""notebooks/colab.ipynb as Colab runs it: stored without outputs, nothing but the pipeline's commands, and
run cell by cell in a kernel as on a fresh Colab runtime (no git identity, an empty HOME, the clone from a
repository URL, the install cell's own install: scripts/install.py --here), twice, across a disconnect, and
with the placeholder."""
import ast
import contextlib
import copy
import hashlib
import json
import os
import re
import shutil

import nbformat
import pytest
from IPython.core.inputtransformer2 import TransformerManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from conftest import ROOT, make_repo, ran, run, serving, tiny_archive_in, tool_env

NOTEBOOK = ROOT / "notebooks/colab.ipynb"
PARAMETERS = {"REPO_URL", "REVISION", "DATA_URL", "DATA_MD5", "QUICK_LOOK", "SMOKE", "VARIANT", "DVC_REMOTE",
              "RESTORE", "WORKDIR"}
# what a clone holds beyond the pipeline's files (conftest's PROJECT_FILES): what the install cell reads
INSTALL_FILES = ["requirements.txt", "requirements.in", "requirements-frost.txt", "pyproject.toml",
                 "README.md"]
RUN_CELL = 'dvc exp run -n "$RUN_NAME"'  # the cell that trains the first experiment and keeps it
VARIANT_CELL = 'dvc exp run -n "$VARIANT_NAME"'
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def code_cells(notebook):
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


def text_of(cell) -> str:
    return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")


def cell_with(notebook, snippet: str):
    found = [cell for cell in code_cells(notebook) if snippet in cell.source]
    assert len(found) == 1, snippet
    return found[0]


def with_parameters(notebook, **values):
    """A copy of the notebook with the first cell's parameters set, as a user sets them on Colab."""
    notebook = copy.deepcopy(notebook)
    cell = code_cells(notebook)[0]
    lines = cell.source.splitlines()
    for name, value in values.items():
        at = [i for i, line in enumerate(lines) if line.startswith(f"{name} = ")]
        assert len(at) == 1, f"the first cell does not set {name} once"
        lines[at[0]] = f"{name} = {value!r}"
    cell.source = "\n".join(lines)
    return notebook


def colab_env(home, tmp) -> dict:
    """The kernel's environment as on a fresh Colab runtime: an empty HOME and no git identity anywhere (no
    global or system git config, no GIT_* or EMAIL variables), no pip configuration of this machine. The
    install cell's pip steps resolve against the packages installed here, with no index: a dry run."""
    env = {name: value for name, value in tool_env().items()
           if not name.startswith(("GIT_", "PIP_")) and name != "EMAIL"}
    env.update(HOME=str(home), TMPDIR=str(tmp), GIT_CONFIG_GLOBAL="/dev/null", GIT_CONFIG_NOSYSTEM="1",
               PIP_CONFIG_FILE=os.devnull, PIP_DRY_RUN="1", PIP_NO_INDEX="1",
               PIP_NO_BUILD_ISOLATION="0")  # pip reads "0" as --no-build-isolation: setuptools as installed
    return env


@contextlib.contextmanager
def runtime(notebook, root):
    """A fresh runtime: an empty HOME and temp folder, and a new kernel, shut down when the block ends."""
    for folder in (root / "home", root / "tmp"):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir()
    client = NotebookClient(notebook, timeout=900, kernel_name="python3",
                            resources={"metadata": {"path": str(root)}})
    with client.setup_kernel(env=colab_env(root / "home", root / "tmp")):
        yield client


def run_all(client, notebook, until: str | None = None) -> None:
    """Runtime → Run all: every code cell in order, stopping at the first error (CellExecutionError), or
    after the cell holding `until`."""
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "code":
            client.execute_cell(cell, index)
            if until and until in cell.source:
                return


def kept(drive) -> int:
    """How many experiments the Drive folder's bare repository holds."""
    return len(run(["git", "ls-remote", str(drive / "git"), "refs/exps/*"], drive).stdout.splitlines())


def md5_of(path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_the_notebook_is_stored_without_outputs():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    stored = [(i, len(cell.outputs), cell.execution_count) for i, cell in enumerate(code_cells(notebook))
              if cell.outputs or cell.execution_count is not None]
    assert not stored, f"clear the outputs of notebooks/colab.ipynb before committing it: cells {stored}"


def test_the_notebook_defines_no_function_and_its_first_cell_holds_the_parameters():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    python = TransformerManager()  # the notebook's shell lines and magics, as IPython runs them
    defined = [(i, type(node).__name__) for i, cell in enumerate(code_cells(notebook))
               for node in ast.walk(ast.parse(python.transform_cell(cell.source)))
               if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda))]
    assert not defined
    first = ast.parse(code_cells(notebook)[0].source).body
    assert {target.id for node in first if isinstance(node, ast.Assign) for target in node.targets} == \
        PARAMETERS
    # every shell command runs in a %%bash cell that stops at its first failure (IPython's ! would not stop)
    shell = [cell for cell in code_cells(notebook) if cell.source.startswith("%%bash")]
    assert shell and all(cell.source.splitlines()[1] == "set -euo pipefail" for cell in shell)
    assert not [line for cell in code_cells(notebook) for line in cell.source.splitlines()
                if line.lstrip().startswith("!")]


@pytest.fixture(scope="module")
def colab(tmp_path_factory):
    """The notebook's runs, each in its own kernel as on Colab's runtimes: the stored notebook (the
    placeholder URL); with the parameters set, Run all up to the first experiment, which is kept on the Drive
    folder; the disconnect (the kernel gone, and the runtime's disk with it); a new runtime with RESTORE, Run
    all; and in that kernel, Run all again. The clone comes from a bare repository holding a git copy of this
    project; the data is a tiny archive over loopback HTTP; the network, the smoke run's."""
    root = tmp_path_factory.mktemp("colab")
    with serving(root / "www") as (folder, base):
        md5 = tiny_archive_in(folder)
        project = make_repo(root / "project", "https://invalid.example/cifar.tar.gz", "0" * 32)
        for name in INSTALL_FILES:
            shutil.copy2(ROOT / name, project / name)
        run(["git", "add", *INSTALL_FILES], project)
        run(["git", "commit", "-qm", "what the install cell reads"], project)
        bare = root / "cifarpipe.git"
        run(["git", "clone", "-q", "--bare", str(project), str(bare)], root)
        stored = nbformat.read(NOTEBOOK, as_version=4)
        placeholder = copy.deepcopy(stored)
        with runtime(placeholder, root) as client, pytest.raises(CellExecutionError):
            run_all(client, placeholder)
        params = {"REPO_URL": str(bare), "DATA_URL": f"{base}/cifar-10-python.tar.gz", "DATA_MD5": md5,
                  "QUICK_LOOK": True, "SMOKE": True, "VARIANT": "gradcam.deepest=1",  # reruns GradCAM alone
                  "DVC_REMOTE": str(root / "drive"), "WORKDIR": str(root / "colab")}
        first = with_parameters(stored, **params)
        with runtime(first, root) as client:
            run_all(client, first, until=RUN_CELL)
        before = {"kept": kept(root / "drive"), "model": md5_of(root / "colab/models/seed0/model.pt"),
                  "verdict": json.loads((root / "colab/metrics/aggregate.json").read_text())["verdict_line"]}
        shutil.rmtree(root / "colab")  # the disconnect: the runtime's disk is gone, the Drive folder stays
        restored = with_parameters(stored, **params, RESTORE=True)
        again = copy.deepcopy(restored)
        with runtime(restored, root) as client:
            run_all(client, restored)
            restored = copy.deepcopy(restored)  # nbclient puts the cells it runs into the notebook it got
            after = {"model": md5_of(root / "colab/models/seed0/model.pt"),
                     "install": sorted((root / "tmp").glob("cifarpipe-install-*"))[-1]}
            run_all(client, again)
    for name, notebook in (("placeholder", placeholder), ("first", first), ("restored", restored),
                           ("again", again)):
        nbformat.write(notebook, root / f"{name}.ipynb")  # what each run showed, to read after a failure
    return {"root": root, "bare": bare, "placeholder": placeholder, "first": first, "restored": restored,
            "again": again, "before": before, "after": after}


@pytest.mark.slow
def test_with_the_placeholder_url_run_all_stops_at_the_first_cell_with_one_line(colab):
    cells = code_cells(colab["placeholder"])
    errors = [o for o in cells[0].outputs if o.output_type == "error"]
    assert len(errors) == 1 and not text_of(cells[0])
    lines = ANSI.sub("", "\n".join(errors[0].traceback)).strip().splitlines()
    assert len(lines) == 1 and "REPO_URL is the placeholder" in lines[0] and "set it in this cell" in lines[0]
    assert all(cell.execution_count is None for cell in cells[1:])


@pytest.mark.slow
def test_a_disconnect_after_the_first_experiment_keeps_it_and_restore_brings_it_back(colab):
    first, restored, before, after = colab["first"], colab["restored"], colab["before"], colab["after"]
    trained = text_of(cell_with(first, RUN_CELL))
    assert "train@0" in ran(trained) and "smoke is kept in " in trained
    assert before["kept"] == 1  # the first experiment was on the Drive before the variant began
    pulled = text_of(cell_with(restored, "dvc exp pull"))
    assert re.search(r"^restored from .*: smoke $", pulled, re.MULTILINE), pulled
    applied = text_of(cell_with(restored, RUN_CELL))
    assert "smoke is kept already: applying it" in applied and ran(applied) == []
    verdict = text_of(cell_with(restored, "verdict_line")).splitlines()[0]
    print(f"the verdict before the disconnect: {before['verdict']}\nafter the restore: {verdict}")
    assert verdict == before["verdict"] and after["model"] == before["model"]


@pytest.mark.slow
def test_run_all_on_a_fresh_runtime_without_a_git_identity_shows_the_verdict_the_table_and_the_figures(colab):
    restored, root = colab["restored"], colab["root"]
    cells = code_cells(restored)
    assert all(cell.execution_count for cell in cells), "a cell did not run"
    assert not [o for cell in cells for o in cell.outputs if o.output_type == "error"]
    identity = "cifarpipe on Colab <colab@cifarpipe.invalid>"
    assert f"committed as {identity}" in text_of(cell_with(restored, "git clone"))
    assert run(["git", "config", "--local", "user.email"], root / "colab").stdout.strip() == \
        "colab@cifarpipe.invalid"
    # the install cell's non-GPU branch: the runtime lock less the kernel's packages and the torch stack, with
    # pip's resolution checked against what is installed here (a dry run)
    assert "keeping this Python's torch" in text_of(cell_with(restored, "scripts/install.py --here"))
    held = dict(line.split("==") for line in (colab["after"]["install"] / "held.txt").read_text().split())
    assert {"ipykernel", "ipython", "jupyter-client", "tornado", "pyzmq", "traitlets"} <= held.keys()
    installs = (colab["after"]["install"] / "requirements.txt").read_text().splitlines()
    pins = {line.split("==")[0] for line in installs if "==" in line and not line.startswith(" ")}
    assert "dvc" in pins and not pins & (held.keys() | {"torch", "torchvision"})
    assert "PROBLEM" not in text_of(cell_with(restored, "cifarpipe doctor"))
    verdict = r"^1 seed\(s\): test accuracy 0\.\d{4}; target 0\.9: not met \(1 seed\)"
    assert re.search(verdict, text_of(cell_with(restored, "verdict_line")), re.MULTILINE)
    variant = text_of(cell_with(restored, VARIANT_CELL))
    assert ran(variant) == ["gradcam"] and "kept in " in variant and ": 2 experiment(s)" in variant
    compared = text_of(cell_with(restored, "dvc exp diff"))
    table = [line for line in compared.splitlines() if line.startswith(("└ smoke", "└ deepest-1"))]
    assert len(table) == 2 and all(len(line) <= 120 for line in table)
    assert re.search(r"^params\.yaml\s+gradcam\.deepest\s+2\s+1\b", compared, re.MULTILINE), compared
    figures = [o for cell in cells for o in cell.outputs if "image/png" in o.get("data", {})]
    gradcams = sorted((root / "colab/plots/gradcam").glob("*.png"))
    assert gradcams and len(figures) == 7 + len(gradcams)
    assert run(["git", "for-each-ref", "refs/exps"], colab["bare"]).stdout == ""  # on the Drive, not origin


@pytest.mark.slow
def test_a_second_run_all_retrains_nothing_and_ends_as_the_first_did(colab):
    restored, again = colab["restored"], colab["again"]
    assert all(cell.execution_count for cell in code_cells(again))
    assert not [o for cell in code_cells(again) for o in cell.outputs if o.output_type == "error"]
    assert ran("".join(text_of(cell) for cell in code_cells(again))) == []
    assert "deepest-1 is kept already: applying it" in text_of(cell_with(again, VARIANT_CELL))
    # the verdict line, then the last cell (both experiments' table, their diff): as the first Run all's
    assert text_of(cell_with(again, "verdict_line")).splitlines()[0] == \
        text_of(cell_with(restored, "verdict_line")).splitlines()[0]
    assert text_of(cell_with(again, "dvc exp diff")) == text_of(cell_with(restored, "dvc exp diff"))
    print(text_of(cell_with(again, "verdict_line")) + text_of(cell_with(again, "dvc exp diff")))


def test_the_doctor_cell_stops_the_run_on_a_problem_line(tmp_path):
    """The doctor cell's script, as %%bash runs it, where the driver shows a GPU that torch cannot use (a fake
    nvidia-smi; torch here is a CPU run, or sees no GPU): it exits non-zero, which stops Run all."""
    if shutil.which("nvidia-smi"):
        pytest.skip("a real nvidia-smi is here")
    fake = tmp_path / "nvidia-smi"
    fake.write_text("#!/bin/sh\nif [ \"$1\" = \"\" ]; then echo '| NVIDIA-SMI 535.104.05   Driver Version: "
                    "535.104.05   CUDA Version: 12.2 |'; else echo 'Tesla T4, 535.104.05'; fi\n")
    fake.chmod(0o755)
    script = cell_with(nbformat.read(NOTEBOOK, as_version=4), "cifarpipe doctor").source.split("\n", 1)[1]
    path = f"{tmp_path}{os.pathsep}{tool_env()['PATH']}"
    proc = run(["bash", "-c", script], ROOT, check=False,
               env_extra={"PATH": path, "INSTALL_DIR": str(tmp_path)})
    assert proc.returncode == 1 and re.search(r"^PROBLEM .*torch cannot use", proc.stdout, re.MULTILINE)
    assert "cifarpipe doctor found a problem (the PROBLEM line above)" in proc.stderr


def test_the_readme_links_the_notebook_through_colabs_badge_and_says_what_to_set():
    readme = (ROOT / "README.md").read_text()
    badge = next(line for line in readme.splitlines() if "colab.research.google.com/github/" in line)
    assert "/blob/main/notebooks/colab.ipynb)" in badge
    assert "set `REPO_URL` in the notebook's first cell" in badge and "then Run all" in badge
    assert NOTEBOOK.exists()
