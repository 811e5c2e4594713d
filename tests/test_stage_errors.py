"""A stage run by hand fails in one line that names the fix: a missing input names the stage that makes it, a
gradcam layer the model lacks is refused before any data loads."""
import shutil
import subprocess
import sys

import pytest
import torch
import yaml

from cifarpipe.core.params import Model
from cifarpipe.core.stage import producing_stage
from cifarpipe.model.networks import build_model
from conftest import ROOT, bare_env


def stage_by_hand(name, cwd, *args):
    return subprocess.run([sys.executable, "-m", f"stages.{name}", *args], cwd=cwd, capture_output=True,
                          text=True, env=bare_env())


@pytest.fixture
def fresh_clone(tmp_path):
    """What a clone holds before any `dvc repro`: params and dvc.yaml, no outputs."""
    for name in ("params.yaml", "dvc.yaml"):
        shutil.copy(ROOT / name, tmp_path / name)
    return tmp_path


@pytest.mark.parametrize("stage, missing, maker", [(["stats"], "data/cifar10.npz", "download"),
                                                    (["train", "--seed", "0"], "metrics/lr_pick.json",
                                                     "lr_pick"),
                                                    (["aggregate"], "dvclive/evaluate/seed0/metrics.json",
                                                     "evaluate")])
def test_a_stage_run_before_its_inputs_exist_names_the_stage_to_run_first(fresh_clone, stage, missing, maker):
    proc = stage_by_hand(stage[0], fresh_clone, *stage[1:])
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.strip() == (f"error: {missing} does not exist yet: stage {maker} makes it. Run `dvc "
                                   f"repro {maker}` first (it also runs the stages before it), or `dvc "
                                   "repro` for the whole pipeline.")


def test_the_stage_that_makes_a_path_is_read_from_dvc_yaml(tmp_path):
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump({"stages": {
        "a": {"cmd": "x", "outs": ["data/a.npz", {"plots/pics": {"cache": True}}], "metrics": ["m/a.json"]},
        "b": {"matrix": {"seed": [0, 1]}, "cmd": "y", "outs": ["models/seed${item.seed}/model.pt"]}}}))
    found = {path: producing_stage(path, tmp_path / "dvc.yaml") for path in
             ["data/a.npz", "plots/pics/one.png", "m/a.json", "models/seed7/model.pt", "data/other.npz",
              "plots/pic"]}
    assert found == {"data/a.npz": "a", "plots/pics/one.png": "a", "m/a.json": "a",
                     "models/seed7/model.pt": "b", "data/other.npz": None, "plots/pic": None}


def test_a_gradcam_layer_the_model_lacks_is_refused_before_any_data_loads(fresh_clone):
    params = yaml.safe_load((fresh_clone / "params.yaml").read_text())
    params["gradcam"]["layers"] = ["layer2", "layer9"]
    (fresh_clone / "params.yaml").write_text(yaml.safe_dump(params))
    (fresh_clone / "models/seed0").mkdir(parents=True)
    # a model, and neither data nor predictions
    torch.save(build_model(Model(**params["model"])).state_dict(), fresh_clone / "models/seed0/model.pt")
    proc = stage_by_hand("gradcam", fresh_clone, "--seed", "0")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.startswith("error: gradcam.layers names 'layer9', which CustomResNet lacks; its "
                                  "blocks are prep_layer, layer1, layer2, layer3")


def test_a_file_written_atomically_reads_as_one_written_in_place(tmp_path):
    """A temp file renamed into place, or a temp folder: never a half-written one, and the mode a plain write
    gives (mkstemp's and mkdtemp's own are owner-only, which a shared DVC cache or a second user could not
    read)."""
    from cifarpipe.core.artifacts import atomic_dir, write_json

    (tmp_path / "plain.json").write_text("{}")
    write_json(tmp_path / "atomic.json", {})
    with atomic_dir(tmp_path / "folder") as folder:
        (folder / "inside.txt").write_text("x")
    (tmp_path / "plain").mkdir()
    mode = {p.name: p.stat().st_mode & 0o777 for p in tmp_path.iterdir()}
    assert mode["atomic.json"] == mode["plain.json"] and mode["folder"] == mode["plain"]
    assert not list(tmp_path.glob(".*"))
