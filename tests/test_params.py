"""params.yaml is checked before a stage does any work; each stage sees only the params dvc.yaml declares for
it."""
import subprocess
import sys

import pytest
import yaml

from cifarpipe.compute.device import resolve_compute
from cifarpipe.core.errors import UndeclaredParamError
from cifarpipe.core.params import Model, ParamsError, load_params, restrict, runtime_settings, stage_params
from cifarpipe.gradcam.cams import check_methods
from cifarpipe.lr.rules import pick
from cifarpipe.model.networks import build_model
from cifarpipe.train.optimizers import make_optimizer
from cifarpipe.train.compile import compile_for_training
from conftest import CPU_COMPUTE, NARROW, PARAMS_YAML, ROOT, bare_env, defaults

LR_PICK = {"skip_start": 0}


def test_the_shipped_params_are_valid():
    params = load_params(PARAMS_YAML)
    assert params.train.batch_size == 512 and params.schedule.epochs == 24


@pytest.mark.parametrize("override, message", [
    ({"optim.lrr": 0.1}, "unknown key optim.lrr; optim has: name, lr,"),
    ({"schedule.epochs": 0}, "schedule.epochs = 0 is not allowed: it should be greater than 0"),
    ({"schedule.epochs": "24"}, "schedule.epochs = '24' is not allowed: it should be a valid integer"),
    ({"schedule.epochs": 2.5}, "schedule.epochs = 2.5 is not allowed: it should be a valid integer"),
    ({"train.batch_size": -1}, "train.batch_size = -1"),
    ({"schedule.peak_epoch": 24}, "it should be less than schedule.epochs = 24"),
    ({"augment.cutout": 40}, "at most the crop size"),
    ({"augment.fill": 300},
     "augment.fill = 300 is not allowed: it should be 'mean' or it should be less than or equal "
                            "to 255"),
    ({"optim.lr": -0.1}, "optim.lr = -0.1"),
    ({"optim.lr": 0}, "optim.lr = 0 is not allowed: it should be greater than 0"),
    ({"optim.lr": float("nan")}, "it should be a finite number"),
    ({"optim.beta2": 1.0}, "optim.beta2 = 1.0 is not allowed: it should be less than 1"),
    ({"data.md5": "xyz"}, "32 hexadecimal"),
    ({"data.url": "ftp://x"}, "http://, https:// or file://"),
    ({"compute.device": "tpu"}, "auto, cpu, cuda or cuda:K"),
    ({"compute.gpus": 2, "compute.device": "cuda:1"}, "auto, cuda or cpu when compute.gpus > 1"),
    ({"compute.compile": "yes"}, "compute.compile = 'yes' is not allowed: it should be a valid boolean"),
    ({"lr_pick.min_div": 0.5}, "greater than or equal to 1"),
    ({"lr_pick.fall_frac": 1}, "lr_pick.fall_frac = 1 is not allowed: it should be less than 1"),
    ({"runtime.download_max_mb": 0}, "runtime.download_max_mb = 0"),
    ({"gradcam.methods": []}, "a non-empty list of method names"),
    ({"gradcam.layers": "deep"}, "auto or a non-empty list of block names"),
    ({"augment.flip": 1.5}, "less than or equal to 1"),
    ({"train.seeds": []},
     "train.seeds = [] is not allowed: it should be a non-empty list of distinct integers >= 0"),
    ({"train.seeds": [0, 1, 0]},
     "train.seeds = [0, 1, 0] is not allowed: it should be a list of distinct seeds"),
    ({"noise.confidence": 95}, "noise.confidence = 95 is not allowed: it should be less than 1"),
])
def test_bad_values_name_the_key_the_value_and_what_is_allowed(override, message):
    with pytest.raises(ParamsError) as err:
        load_params(PARAMS_YAML, override)
    assert message in str(err.value)
    assert str(err.value).count("\n") == 0 and str(err.value).startswith("params.yaml: ")


@pytest.mark.parametrize("key, value, check", [
    ("model.name", "resnet50", lambda v: build_model(Model(name=v, width=64))),
    ("optim.name", "rmsprop", lambda v: make_optimizer(build_model(NARROW), defaults("optim", name=v), 0.1,
                                                       __import__("torch").device("cpu"))),
    ("compute.precision", "fp8", lambda v: resolve_compute(CPU_COMPUTE.model_copy(update={"precision": v}))),
    ("compute.compile_mode", "fast", lambda v: compile_for_training(build_model(NARROW), None, None, mode=v)),
    ("lr_pick.rule", "suggest",
     lambda v: pick([1, 2, 3, 4], [4, 3, 2, 1], defaults("lr_pick", **LR_PICK, rule=v), 10)),
    ("lr_pick.lrmin", "half",
     lambda v: pick([1, 2, 3, 4], [4, 3, 2, 1], defaults("lr_pick", **LR_PICK, lrmin=v), 10)),
    ("gradcam.methods", "scorecam", lambda v: check_methods(["gradcam", v])),
])
def test_a_name_is_checked_against_the_one_registry_that_implements_it(key, value, check):
    """Each list of names lives once, beside what it names; the error has the same shape as params.yaml's
    own."""
    with pytest.raises(ParamsError,
                       match=rf"^params.yaml: {key} = '{value}' is not allowed: it should be one of "):
        check(value)


def test_a_missing_key_is_named(tmp_path):
    params = yaml.safe_load((PARAMS_YAML).read_text())
    del params["train"]["seeds"]
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(ParamsError, match="missing key train.seeds"):
        load_params(tmp_path / "params.yaml")


def test_a_stage_with_bad_params_exits_1_with_one_line_before_any_work(tmp_path):
    params = yaml.safe_load((PARAMS_YAML).read_text())
    params["optim"]["lrr"] = 0.1
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    proc = subprocess.run([sys.executable, "-m", "stages.train"], cwd=tmp_path, capture_output=True,
                          text=True, env=bare_env())
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: params.yaml: unknown key optim.lrr")
    assert "Traceback" not in proc.stderr
    assert list(tmp_path.iterdir()) == [tmp_path / "params.yaml"]  # nothing written


def test_a_stage_gets_only_the_params_dvc_yaml_declares_for_it():
    params = stage_params("evaluate", PARAMS_YAML, ROOT / "dvc.yaml")
    assert params.evaluate.tta_flip is True and params.compute.precision == "auto"
    with pytest.raises(UndeclaredParamError,
                       match="stage evaluate read params.yaml key compute.gpus, which its dvc.yaml entry "
                                       "does not declare"):
        params.compute.gpus
    with pytest.raises(UndeclaredParamError, match="key optim, which"):
        params.optim
    assert params.runtime.eval_batch_size == runtime_settings(PARAMS_YAML).eval_batch_size == 256
    assert params.model_dump()["compute"] == {"device": "auto", "precision": "auto", "channels_last": True,
                                              "deterministic": False}


@pytest.mark.parametrize("old", ["train.precision", "train.device", "train.gpus", "train.compile_mode"])
def test_a_key_that_moved_to_compute_gets_one_line_naming_its_new_home(old):
    new = old.replace("train.", "compute.")
    with pytest.raises(ParamsError) as err:
        load_params(PARAMS_YAML, {old: "auto"})
    assert str(err.value) == (f"params.yaml: {old} is now {new}: move it under `compute:` in params.yaml (and "
                              f"write `dvc exp run -S {new}=...`)")
    with pytest.raises(ParamsError, match=f"stage x declares {old}, which is now {new}"):
        restrict(load_params(PARAMS_YAML), [old], "x")


def test_a_declared_key_that_params_yaml_lacks_is_named():
    with pytest.raises(ParamsError, match="stage x declares train.speed, which params.yaml lacks"):
        restrict(load_params(PARAMS_YAML), ["train.speed"], "x")
