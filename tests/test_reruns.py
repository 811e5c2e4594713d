"""Files are cut along what reruns: no picture is drawn by code the training stage imports, and the README's table
of what reruns what is the one `cifarpipe reruns` prints from dvc.yaml."""
import ast
import re
import subprocess
import sys

from cifarpipe.reruns import code_deps, reruns_table, stage_files
from conftest import ROOT


def imports_matplotlib(path) -> bool:
    for node in ast.walk(ast.parse((ROOT / path).read_text())):
        names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                 [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
        if any(n.split(".")[0] == "matplotlib" for n in names):
            return True
    return False


def test_no_module_the_train_stage_runs_draws_a_picture():
    """Restyling a chart must never retrain the model: the train stage's files neither live in cifarpipe/reports/
    nor import matplotlib, and every module that does import matplotlib is in cifarpipe/reports/."""
    train = stage_files(ROOT, "stages.train")
    assert not [f for f in train if f.startswith("cifarpipe/reports/")], train
    assert not [f for f in train if imports_matplotlib(f)], train
    drawing = {p.relative_to(ROOT).as_posix() for p in (ROOT / "cifarpipe").rglob("*.py")
               if imports_matplotlib(p.relative_to(ROOT))}
    assert drawing and all(f.startswith("cifarpipe/reports/") for f in drawing), drawing


def test_the_figure_guard_fails_when_a_figure_module_enters_the_train_closure(tmp_path):
    """The check above can fail: the same walk over a copy whose training loop imports a figure module."""
    import shutil

    copy = tmp_path / "copy"
    for name in ("cifarpipe", "stages"):
        shutil.copytree(ROOT / name, copy / name)
    loop = copy / "cifarpipe/training.py"
    loop.write_text("from .reports.curves import training_curves  # drawn per epoch\n" + loop.read_text())
    assert "cifarpipe/reports/curves.py" in stage_files(copy, "stages.train")


def test_edits_to_the_download_and_figure_code_rerun_only_their_stages():
    deps = code_deps(ROOT)
    reruns = {f: sorted(s for s, listed in deps.items() if f in listed) for f in
              ["cifarpipe/download.py", "cifarpipe/archive.py", "cifarpipe/reports/evaluation.py",
               "cifarpipe/reports/curves.py", "cifarpipe/evaluation.py", "cifarpipe/lr_rules.py"]}
    assert reruns == {"cifarpipe/download.py": ["download"], "cifarpipe/archive.py": ["download"],
                      "cifarpipe/reports/evaluation.py": ["evaluate"], "cifarpipe/reports/curves.py": ["aggregate"],
                      "cifarpipe/evaluation.py": ["evaluate"], "cifarpipe/lr_rules.py": ["lr_pick"]}


def test_the_readme_table_is_what_the_command_prints():
    proc = subprocess.run([sys.executable, "-m", "cifarpipe.cli", "reruns"], cwd=ROOT, capture_output=True,
                          text=True, check=True)
    printed = proc.stdout.strip()
    assert printed == reruns_table(ROOT).to_markdown(index=False)
    assert "| `cifarpipe/reports/curves.py`" in printed and "every stage" in printed
    docs = (ROOT / "docs/reruns.md").read_text()
    table = re.search(r"<!-- cifarpipe reruns -->\n(.*?)\n<!-- end -->", docs, re.S)
    assert table, "docs/reruns.md lacks the generated table"
    assert table.group(1).strip() == printed, "docs/reruns.md is stale: paste the output of `cifarpipe reruns`"
