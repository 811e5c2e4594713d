"""Code is cut along what reruns: no picture is drawn by code the training stage imports, and the table of
what reruns what (docs/reruns.md) is the one `cifarpipe reruns` prints from dvc.yaml."""
import ast
import re
import shutil
import subprocess
import sys

from cifarpipe.tools.reruns import NOT_DEPS, code_deps, covers, reruns_table, stage_files
from conftest import ROOT

# a stage's own code: a folder, or files of a folder two stages share
STAGE_FOLDERS = ["gradcam", "corrupt", "robustness", "export", "preview", "aggregate"]
STAGE_FILES = {"cifarpipe/lr/range_test.py": "lr_find", "cifarpipe/lr/rules.py": "lr_pick",
               "cifarpipe/lr/figures.py": "lr_pick", "cifarpipe/evaluate/metrics.py": "evaluate",
               "cifarpipe/evaluate/figures.py": "evaluate", "cifarpipe/train/loop.py": "train"}


def rerun_by(path: str) -> list[str]:
    """The stages whose listed code covers `path` (its folder, or the file itself)."""
    return sorted(s for s, listed in code_deps(ROOT).items() if any(covers(d, path) for d in listed))


def imports_matplotlib(path) -> bool:
    for node in ast.walk(ast.parse((ROOT / path).read_text())):
        names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                 [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
        if any(n.split(".")[0] == "matplotlib" for n in names):
            return True
    return False


def test_no_module_the_train_stage_runs_draws_a_picture():
    """Restyling a chart must never retrain the model: nothing the train stage runs imports matplotlib, and
    every module that does is a `figures.py` of a stage's folder or the shared figures/ folder."""
    train = stage_files(ROOT, "stages.train")
    assert not [f for f in train if imports_matplotlib(f)], train
    drawing = {p.relative_to(ROOT).as_posix() for p in (ROOT / "cifarpipe").rglob("*.py")
               if imports_matplotlib(p.relative_to(ROOT))}
    assert drawing and all(f.startswith("cifarpipe/figures/") or f.endswith("/figures.py")
                           for f in drawing), drawing
    assert not {f.split("/")[1] for f in drawing} & {f.split("/")[1] for f in train if f.count("/") > 1}


def test_the_figure_guard_fails_when_a_figure_module_enters_the_train_closure(tmp_path):
    """The check above can fail: the same walk over a copy whose training loop imports a figure module."""
    copy = tmp_path / "copy"
    for name in ("cifarpipe", "stages"):
        shutil.copytree(ROOT / name, copy / name)
    loop = copy / "cifarpipe/train/loop.py"
    loop.write_text("from ..aggregate.figures import training_curves  # drawn per epoch\n" + loop.read_text())
    assert "cifarpipe/aggregate/figures.py" in stage_files(copy, "stages.train")


def test_each_stage_folder_is_run_by_its_own_stage_only_and_tools_by_none():
    for folder in STAGE_FOLDERS:
        assert rerun_by(f"cifarpipe/{folder}/x.py") == [folder], folder
    for path, stage in STAGE_FILES.items():
        assert rerun_by(path) == [stage], path
    assert not rerun_by("cifarpipe/tools/cli.py") and not rerun_by("cifarpipe/slurm/plan.py")
    assert {f: rerun_by(f) for f in ["cifarpipe/download/fetch.py", "cifarpipe/train/optimizers.py",
                                     "cifarpipe/train/one_cycle.py", "cifarpipe/evaluate/scoring.py",
                                     "cifarpipe/evaluate/calibration.py", "cifarpipe/figures/common.py"]} == {
        "cifarpipe/download/fetch.py": ["corrupt", "download"],
        "cifarpipe/train/optimizers.py": ["lr_find", "train"],
        "cifarpipe/train/one_cycle.py": ["aggregate", "train"],
        "cifarpipe/evaluate/scoring.py": ["evaluate", "robustness", "train"],
        "cifarpipe/evaluate/calibration.py": ["evaluate", "robustness"],
        "cifarpipe/figures/common.py": ["aggregate", "evaluate", "gradcam", "lr_pick", "preview", "robustness"]}


def test_the_docs_table_is_what_the_command_prints():
    proc = subprocess.run([sys.executable, "-m", "cifarpipe.tools.cli", "reruns"], cwd=ROOT,
                          capture_output=True, text=True, check=True)
    printed = proc.stdout.strip()
    assert printed == reruns_table(ROOT).to_markdown(index=False)
    assert "| `cifarpipe/aggregate/`" in printed and "every stage" in printed
    docs = (ROOT / "docs/reruns.md").read_text()
    table = re.search(r"<!-- cifarpipe reruns -->\n(.*?)\n<!-- end -->", docs, re.S)
    assert table, "docs/reruns.md lacks the generated table"
    assert table.group(1).strip() == printed, "docs/reruns.md is stale: paste what `cifarpipe reruns` prints"


def returns_text_only(function: ast.FunctionDef) -> bool:
    """A docstring, then one `return` of text: string pieces, formatted values, `", ".join(...)`."""
    body = function.body[1:] if ast.get_docstring(function) else function.body
    if len(body) != 1 or not isinstance(body[0], ast.Return):
        return False
    calls = [n for n in ast.walk(body[0]) if isinstance(n, ast.Call)]
    return all(isinstance(c.func, ast.Attribute) and c.func.attr == "join" for c in calls)


def is_text_constant(node) -> bool:
    """`NAME = "words"`: text a message names (the one install's command)."""
    return (isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str))


def test_the_files_no_stage_lists_cannot_change_an_output():
    """Every stage loads cifarpipe/__init__.py and cifarpipe/messages.py, yet none lists them: the first holds
    a docstring and nothing else, the second only functions that return the words of an error, and text."""
    assert set(NOT_DEPS) == {"cifarpipe/__init__.py", "cifarpipe/messages.py"}
    assert all("cifarpipe/messages.py" in stage_files(ROOT, f"stages.{s}") for s in ["train", "stats"])
    init = ast.parse((ROOT / "cifarpipe/__init__.py").read_text())
    assert len(init.body) == 1 and ast.get_docstring(init) and "\n" not in ast.get_docstring(init)
    messages = ast.parse((ROOT / "cifarpipe/messages.py").read_text())
    functions = [n for n in messages.body[1:] if not is_text_constant(n)]
    assert functions and all(isinstance(f, ast.FunctionDef) and returns_text_only(f) for f in functions)
    assert not is_text_constant(ast.parse("LIMIT = 3").body[0])
    assert not returns_text_only(ast.parse("def f(x):\n    x.append(1)\n    return 'a'").body[0])
    assert not returns_text_only(ast.parse("def f(x):\n    return str(train(x))").body[0])


def test_a_package_init_that_no_stage_lists_is_a_docstring_only():
    """A stage that lists single files of a folder still loads the folder's __init__.py, which no dep covers:
    each holds a one-line docstring and nothing else, and one with code would be a dep again."""
    from cifarpipe.tools.reruns import is_docstring_only, needed_files

    inits = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "cifarpipe").rglob("__init__.py"))
    assert len(inits) > 10 and all(is_docstring_only(ROOT, i) for i in inits), inits
    assert "cifarpipe/train/__init__.py" in stage_files(ROOT, "stages.lr_find")
    assert "cifarpipe/train/__init__.py" not in needed_files(ROOT, "stages.lr_find")
    assert not is_docstring_only(ROOT, "cifarpipe/lr/rules.py")
