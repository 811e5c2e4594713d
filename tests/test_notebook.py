"""notebooks/colab.ipynb: nothing but the pipeline's commands, stored without outputs, and run end to end by
papermill on the CPU against a git copy of this project, a tiny archive and the smoke run."""
import ast
import re

import nbformat
import papermill
import pytest
from IPython.core.inputtransformer2 import TransformerManager

from conftest import ROOT, dvc, make_repo, run, tool_env

NOTEBOOK = ROOT / "notebooks/colab.ipynb"


def code_cells(notebook):
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


def test_the_notebook_is_stored_without_outputs():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    stored = [(i, len(cell.outputs), cell.execution_count) for i, cell in enumerate(code_cells(notebook))
              if cell.outputs or cell.execution_count is not None]
    assert not stored, f"clear the outputs of notebooks/colab.ipynb before committing it: cells {stored}"


def test_the_notebook_defines_no_function_or_class_and_has_one_parameters_cell():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    python = TransformerManager()  # the notebook's shell lines and magics, as IPython runs them
    defined = [(i, type(node).__name__) for i, cell in enumerate(code_cells(notebook))
               for node in ast.walk(ast.parse(python.transform_cell(cell.source)))
               if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda))]
    assert not defined
    tagged = [cell for cell in code_cells(notebook) if "parameters" in cell.metadata.get("tags", [])]
    assert len(tagged) == 1 and tagged[0] is code_cells(notebook)[0]
    names = {target.id for node in ast.parse(tagged[0].source).body for target in node.targets}
    assert {"REPO_URL", "DATA_URL", "DATA_MD5", "QUICK_LOOK", "DVC_REMOTE"} <= names


@pytest.mark.slow
def test_the_notebook_runs_the_smoke_run_a_variant_and_keeps_both_on_the_named_remote(
        tmp_path, tiny_archive, monkeypatch):
    url, md5 = tiny_archive
    project = make_repo(tmp_path / "project", "https://invalid.example/cifar.tar.gz", "0" * 32)
    drive = tmp_path / "drive"
    for name, value in tool_env().items():  # the kernel and its shell cells: this venv's dvc and cifarpipe
        monkeypatch.setenv(name, value)
    ran = papermill.execute_notebook(
        str(NOTEBOOK), str(tmp_path / "ran.ipynb"), kernel_name="python3", progress_bar=False,
        cwd=str(tmp_path), parameters={"REPO_URL": str(project), "DATA_URL": url, "DATA_MD5": md5,
                                       "QUICK_LOOK": True, "SMOKE": True, "INSTALL": False,
                                       "DVC_REMOTE": str(drive), "WORKDIR": str(tmp_path / "colab")})

    cells = code_cells(ran)
    assert all(cell.execution_count for cell in cells), "a cell did not run"
    assert not [o for cell in cells for o in cell.outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for cell in cells for o in cell.outputs if o.output_type == "stream")
    verdict = r"^1 seed\(s\): test accuracy 0\.\d{4}; target 0\.9: not met \(1 seed\)"
    assert re.search(verdict, text, re.MULTILINE)
    assert "kept in " in text and ": 2 experiment(s)" in text
    assert "INSTALL is off" in text and "the run: smoke; the variant: lr-0.005" in text
    table = [line for line in text.splitlines() if line.startswith(("└ smoke", "└ lr-0.005"))]
    assert len(table) == 3 and all(len(line) <= 120 for line in table)  # after the run, after the variant
    assert re.search(r"^params\.yaml\s+optim\.lr\s+-\s+0\.005", text, re.MULTILINE), "the variant's diff"

    colab = tmp_path / "colab"
    figures = [o for cell in cells for o in cell.outputs if "image/png" in o.get("data", {})]
    gradcams = sorted((colab / "plots/gradcam").glob("*.png"))
    assert gradcams and len(figures) == 7 + len(gradcams)
    assert run(["git", "status", "--porcelain"], project).stdout == ""  # the user's checkout: untouched

    # a new runtime gets both experiments back from the folder the last cell kept them in
    fresh = tmp_path / "fresh"
    run(["git", "clone", "-q", str(project), str(fresh)], tmp_path)
    dvc("remote", "add", "-d", "--local", "keep", str(drive / "dvc"), cwd=fresh)
    dvc("exp", "pull", "--all-commits", str(drive / "git"), cwd=fresh)
    dvc("exp", "apply", "lr-0.005", cwd=fresh)
    dvc("pull", "-q", cwd=fresh)
    assert (fresh / "models/seed0/model.pt").read_bytes() == (colab / "models/seed0/model.pt").read_bytes()


def test_the_readme_links_the_notebook_through_colabs_badge():
    readme = (ROOT / "README.md").read_text()
    assert "colab.research.google.com/github/" in readme and "/blob/main/notebooks/colab.ipynb)" in readme
    assert NOTEBOOK.exists()
