import subprocess
import sys

import pytest
import yaml

from cifarpipe.params import ParamsError, load_params, restrict, runtime_settings, stage_params
from conftest import ROOT, bare_env


def test_the_shipped_params_are_valid():
    params = load_params(ROOT / "params.yaml")
    assert params["train"]["batch_size"] == 512 and params["schedule"]["epochs"] == 24


@pytest.mark.parametrize("override, message", [
    ({"optim.lrr": 0.1}, "unknown key optim.lrr"),
    ({"schedule.epochs": 0}, "schedule.epochs = 0"),
    ({"schedule.epochs": "24"}, "schedule.epochs = '24'"),
    ({"train.batch_size": -1}, "train.batch_size = -1"),
    ({"schedule.peak_epoch": 24}, "less than schedule.epochs"),
    ({"model.name": "resnet50"}, "one of custom_resnet, resnet18"),
    ({"optim.name": "rmsprop"}, "one of adam, sgd"),
    ({"augment.cutout": 40}, "at most the crop size"),
    ({"optim.lr": -0.1}, "optim.lr = -0.1"),
    ({"optim.lr": 0}, "null or a number > 0"),
    ({"data.md5": "xyz"}, "32 hexadecimal"),
    ({"data.url": "ftp://x"}, "http://, https:// or file://"),
    ({"train.device": "tpu"}, "auto, cpu, cuda or cuda:K"),
    ({"train.precision": "fp8"}, "one of auto, bf16, fp16, fp32"),
    ({"lr_pick.rule": "suggest"}, "one of minimum, valley, steepest"),
    ({"lr_pick.min_div": 0.5}, "a number >= 1"),
    ({"lr_pick.fall_frac": 1}, "strictly between 0 and 1"),
    ({"runtime.download_max_mb": 0}, "a number > 0"),
    ({"gradcam.methods": ["scorecam"]}, "gradcam, gradcam++"),
    ({"augment.flip": 1.5}, "between 0 and 1"),
    ({"train.compile": "yes"}, "true or false"),
    ({"train.compile_mode": "fast"}, "one of default, reduce-overhead, max-autotune-no-cudagraphs, max-autotune"),
])
def test_bad_values_name_the_key_the_value_and_what_is_allowed(override, message):
    with pytest.raises(ParamsError, match=message.replace("(", r"\(").replace("+", r"\+")):
        load_params(ROOT / "params.yaml", override)


def test_a_missing_key_is_named(tmp_path):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    del params["train"]["seed"]
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(ParamsError, match="missing key train.seed"):
        load_params(tmp_path / "params.yaml")


def test_a_stage_with_bad_params_exits_1_with_one_line_before_any_work(tmp_path):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["optim"]["lrr"] = 0.1
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    proc = subprocess.run([sys.executable, "-m", "stages.train"], cwd=tmp_path, capture_output=True, text=True,
                          env=bare_env())
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: params.yaml: unknown key optim.lrr") and "Traceback" not in proc.stderr
    assert list(tmp_path.iterdir()) == [tmp_path / "params.yaml"]  # nothing written


def test_a_stage_gets_only_the_params_dvc_yaml_declares_for_it():
    params = stage_params("evaluate", ROOT / "params.yaml", ROOT / "dvc.yaml")
    assert params["evaluate"]["tta_flip"] is True and params["train"]["precision"] == "auto"
    with pytest.raises(KeyError, match="stage evaluate read params.yaml key train.seed, which its dvc.yaml entry "
                                       "does not declare"):
        params["train"]["seed"]
    with pytest.raises(KeyError, match="key optim, which"):
        params["optim"]
    assert runtime_settings(ROOT / "params.yaml")["eval_batch_size"] == 1024


def test_a_declared_key_that_params_yaml_lacks_is_named():
    with pytest.raises(ParamsError, match="stage x declares train.speed, which params.yaml lacks"):
        restrict(load_params(ROOT / "params.yaml"), ["train.speed"], "x")
