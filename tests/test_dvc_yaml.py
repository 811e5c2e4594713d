"""dvc.yaml tells the truth: each stage lists exactly the code it runs (its script and the package folders it
imports), paths.py names what it declares."""
import re

import pytest
import yaml

from cifarpipe.core import paths
from cifarpipe.tools.reruns import code_deps, code_deps_of, deps_mismatch, stage_files
from conftest import ROOT

DVC_YAML = yaml.safe_load((ROOT / "dvc.yaml").read_text())
STAGES = DVC_YAML["stages"]


@pytest.mark.parametrize("name", list(STAGES))
def test_a_stage_lists_exactly_the_code_it_runs(name):
    assert STAGES[name]["cmd"].startswith(f"python -m stages.{name}")
    missing, unused = deps_mismatch(ROOT, name)
    assert not missing, f"dvc.yaml stage {name} misses code it imports: {sorted(missing)}"
    assert not unused, f"dvc.yaml stage {name} lists code it does not import: {sorted(unused)}"
    listed = code_deps(ROOT)[name]
    assert all((ROOT / d).is_dir() or d == f"stages/{name}.py" or d.startswith("cifarpipe/") and d.count("/") == 2
               for d in listed), listed
    # a folder whose every module the stage runs is listed whole, not file by file
    files = [d for d in listed if d.endswith(".py") and d.startswith("cifarpipe/")]
    for folder in {f.rsplit("/", 1)[0] for f in files}:
        modules = {p.relative_to(ROOT).as_posix() for p in (ROOT / folder).glob("*.py") if p.name != "__init__.py"}
        assert not modules <= set(files), f"stage {name}: list {folder} instead of each of its files"


def test_a_stage_that_lists_one_file_of_a_folder_misses_the_others(tmp_path):
    """File-level deps hold the stage to that file: the range test runs the optimizers but not the training loop
    (so an edit of the loop does not rerun it); a copy whose range test imports the loop fails the check."""
    import shutil

    for name in ("cifarpipe", "stages"):
        shutil.copytree(ROOT / name, tmp_path / name)
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump(DVC_YAML))
    assert "cifarpipe/train/optimizers.py" in STAGES["lr_find"]["deps"]
    assert deps_mismatch(tmp_path, "lr_find") == (set(), set())
    script = tmp_path / "stages/lr_find.py"
    script.write_text(script.read_text() + "\nfrom cifarpipe.train.loop import train\n")
    missing, _ = deps_mismatch(tmp_path, "lr_find")
    assert "cifarpipe/train/loop.py" in missing and "cifarpipe/train/optimizers.py" not in missing


def test_the_import_walk_sees_relative_lazy_and_package_imports(tmp_path):
    (tmp_path / "stages").mkdir()
    (tmp_path / "cifarpipe" / "sub").mkdir(parents=True)
    (tmp_path / "stages/s.py").write_text("from cifarpipe import a\n")
    (tmp_path / "cifarpipe/__init__.py").write_text("")
    (tmp_path / "cifarpipe/a.py").write_text("from .b import thing\ndef f():\n    import cifarpipe.c\n"
                                              "from .sub.d import x\n")
    (tmp_path / "cifarpipe/b.py").write_text("thing = 1\n")
    (tmp_path / "cifarpipe/c.py").write_text("import os\n")
    (tmp_path / "cifarpipe/sub/__init__.py").write_text("")
    (tmp_path / "cifarpipe/sub/d.py").write_text("from ..b import thing\nfrom .e import y\n")
    (tmp_path / "cifarpipe/sub/e.py").write_text("y = 2\n")
    (tmp_path / "cifarpipe/unused.py").write_text("")
    assert stage_files(tmp_path, "stages.s") == {
        "stages/s.py", "cifarpipe/__init__.py", "cifarpipe/a.py", "cifarpipe/b.py",
        "cifarpipe/c.py", "cifarpipe/sub/__init__.py", "cifarpipe/sub/d.py", "cifarpipe/sub/e.py"}


def test_no_stage_declares_a_runtime_setting():
    for name, stage in STAGES.items():
        assert not [p for p in stage.get("params", []) if p.split(".")[0] == "runtime"], name


def as_paths_py(path: str) -> str:
    """A dvc.yaml path in paths.py's spelling: a per-seed ${item.seed} or the first seed ${train.seeds.0} is
    {seed}."""
    return re.sub(r"\$\{(item\.seed|train\.seeds\.0)\}", "{seed}", path)


def declared_outputs() -> set[str]:
    found = set()
    for stage in STAGES.values():
        for kind in ("outs", "metrics"):
            found.update(as_paths_py(next(iter(o)) if isinstance(o, dict) else o)
                         for o in stage.get(kind, []))
    return found


def test_paths_py_names_exactly_what_dvc_yaml_declares():
    """Every path a stage writes through cifarpipe/core/paths.py is a declared output (else DVC would not
    cache it), and every declared output has its name in paths.py (else a stage writes it under a second
    spelling)."""
    named = {value for key, value in vars(paths).items() if key.isupper()}
    outputs = declared_outputs()
    # inside a folder out
    under_an_output = {p for p in named if any(p.startswith(out + "/") for out in outputs)}
    # dvclive's own folders
    holds_outputs = {p for p in named if any(out.startswith(p + "/") for out in outputs)}
    # not an output, on purpose
    assert named - outputs - under_an_output - holds_outputs == {paths.CHECKPOINT}
    assert outputs - named == set()
    code = {d for listed in code_deps(ROOT).values() for d in listed}
    deps = {as_paths_py(d) for stage in STAGES.values() for d in stage["deps"] if d not in code}
    # every data dep: outputs of stages
    assert deps <= outputs | under_an_output | holds_outputs, deps - outputs


def test_the_trained_model_is_a_registered_artifact_the_first_seeds():
    artifact = DVC_YAML["artifacts"]["cifar10-resnet"]
    assert artifact["type"] == "model" and artifact["path"] == "models/seed${train.seeds.0}/model.pt"
    assert as_paths_py(artifact["path"]) == paths.MODEL in declared_outputs()


def test_only_the_aggregate_declares_the_seed_list():
    """Adding a seed must run only that seed's stages: a stage that declared train.seeds (or the whole train
    group) would rerun whenever the list changes."""
    declaring = [name for name, stage in STAGES.items() if {"train",
                                                            "train.seeds"} & set(stage.get("params", []))]
    assert declaring == ["aggregate"]
    for name in ("train", "evaluate", "robustness"):
        assert STAGES[name]["matrix"] == {"seed": "${train.seeds}"}, name
