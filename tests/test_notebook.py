"""notebooks/colab.ipynb: nothing but the pipeline's commands, stored without outputs, and run end to end by
papermill on the CPU against a git copy of this project, a tiny archive and the smoke run."""
import ast
import re

import nbformat
import papermill
import pytest
from IPython.core.inputtransformer2 import TransformerManager

from conftest import ROOT, dvc, make_repo, run, serving, tiny_archive_in, tool_env

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


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    """(the executed notebook, its folder, the user's project): papermill runs the stored notebook on the CPU
    against a git copy of this project, the tiny archive over loopback HTTP and the smoke run."""
    root = tmp_path_factory.mktemp("notebook")
    with serving(root / "www") as (folder, base), pytest.MonkeyPatch.context() as env:
        md5 = tiny_archive_in(folder)
        project = make_repo(root / "project", "https://invalid.example/cifar.tar.gz", "0" * 32)
        for name, value in tool_env().items():  # for the kernel and its shell cells: this venv's dvc
            env.setenv(name, value)
        ran = papermill.execute_notebook(
            str(NOTEBOOK), str(root / "ran.ipynb"), kernel_name="python3", progress_bar=False, cwd=str(root),
            parameters={"REPO_URL": str(project), "DATA_URL": f"{base}/cifar-10-python.tar.gz",
                        "DATA_MD5": md5, "QUICK_LOOK": True, "SMOKE": True, "INSTALL": False,
                        "VARIANT": "gradcam.deepest=1",  # a variant that reruns GradCAM alone
                        "DVC_REMOTE": str(root / "drive"), "WORKDIR": str(root / "colab")})
    return ran, root, project


def stream_text(notebook) -> str:
    return "".join(o.get("text", "") for cell in code_cells(notebook) for o in cell.outputs
                   if o.output_type == "stream")


@pytest.mark.slow
def test_every_cell_runs_and_shows_the_verdict_the_table_the_figures_and_the_variants_diff(executed):
    ran, root, project = executed
    cells = code_cells(ran)
    assert all(cell.execution_count for cell in cells), "a cell did not run"
    assert not [o for cell in cells for o in cell.outputs if o.output_type == "error"]
    text = stream_text(ran)
    verdict = r"^1 seed\(s\): test accuracy 0\.\d{4}; target 0\.9: not met \(1 seed\)"
    assert re.search(verdict, text, re.MULTILINE)
    assert "INSTALL is off" in text and "the run: smoke; the variant: deepest-1" in text
    table = [line for line in text.splitlines() if line.startswith(("└ smoke", "└ deepest-1"))]
    assert len(table) == 3 and all(len(line) <= 120 for line in table)  # after the run, after the variant
    assert re.search(r"^params\.yaml\s+gradcam\.deepest\s+2\s+1\b", text, re.MULTILINE), "the variant's diff"
    figures = [o for cell in cells for o in cell.outputs if "image/png" in o.get("data", {})]
    gradcams = sorted((root / "colab/plots/gradcam").glob("*.png"))
    assert gradcams and len(figures) == 7 + len(gradcams)
    assert run(["git", "status", "--porcelain"], project).stdout == ""  # the user's checkout: untouched


@pytest.mark.slow
def test_the_last_cell_keeps_both_experiments_where_a_new_runtime_gets_them_back(executed, tmp_path):
    ran, root, project = executed
    assert "kept in " in stream_text(ran) and ": 2 experiment(s)" in stream_text(ran)
    fresh = tmp_path / "fresh"
    run(["git", "clone", "-q", str(project), str(fresh)], tmp_path)
    dvc("remote", "add", "-d", "--local", "keep", str(root / "drive/dvc"), cwd=fresh)
    dvc("exp", "pull", "--all-commits", str(root / "drive/git"), cwd=fresh)
    dvc("exp", "apply", "deepest-1", cwd=fresh)
    dvc("pull", "-q", cwd=fresh)
    # the variant's own outputs (its GradCAM grids) and what it shares with the run (the model)
    kept = ["models/seed0/model.pt"] + [p.relative_to(root / "colab").as_posix()
                                        for p in sorted((root / "colab/plots/gradcam").glob("*.png"))]
    assert len(kept) > 1
    assert all((fresh / path).read_bytes() == (root / "colab" / path).read_bytes() for path in kept), kept


def test_the_readme_links_the_notebook_through_colabs_badge():
    readme = (ROOT / "README.md").read_text()
    assert "colab.research.google.com/github/" in readme and "/blob/main/notebooks/colab.ipynb)" in readme
    assert NOTEBOOK.exists()
