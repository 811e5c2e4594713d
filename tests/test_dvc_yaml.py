"""dvc.yaml tells the truth: each stage lists exactly the repository code it runs."""
import pytest
import yaml

from conftest import ROOT
from stage_imports import stage_files

STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


@pytest.mark.parametrize("name", list(STAGES))
def test_a_stage_lists_exactly_the_code_it_runs(name):
    stage = STAGES[name]
    assert stage["cmd"] == f"python -m stages.{name}"
    runs = stage_files(ROOT, f"stages.{name}")
    listed = {d for d in stage["deps"] if d.endswith(".py")}
    assert not runs - listed, f"dvc.yaml stage {name} misses code it imports: {sorted(runs - listed)}"
    assert not listed - runs, f"dvc.yaml stage {name} lists code it no longer imports: {sorted(listed - runs)}"


def test_the_import_walk_sees_relative_lazy_and_package_imports(tmp_path):
    (tmp_path / "stages").mkdir()
    (tmp_path / "cifarpipe").mkdir()
    (tmp_path / "stages/__init__.py").write_text("")
    (tmp_path / "stages/s.py").write_text("from cifarpipe import a\n")
    (tmp_path / "cifarpipe/__init__.py").write_text("")
    (tmp_path / "cifarpipe/a.py").write_text("from .b import thing\ndef f():\n    import cifarpipe.c\n")
    (tmp_path / "cifarpipe/b.py").write_text("thing = 1\n")
    (tmp_path / "cifarpipe/c.py").write_text("import os\n")
    (tmp_path / "cifarpipe/unused.py").write_text("")
    assert stage_files(tmp_path, "stages.s") == {"stages/__init__.py", "stages/s.py", "cifarpipe/__init__.py",
                                                  "cifarpipe/a.py", "cifarpipe/b.py", "cifarpipe/c.py"}


def test_no_stage_declares_a_runtime_setting():
    for name, stage in STAGES.items():
        assert not [p for p in stage.get("params", []) if p.split(".")[0] == "runtime"], name
