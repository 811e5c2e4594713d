"""Read params.yaml and check every value before a stage does any work.

A typo (`optim.lrr`), a wrong type or an out-of-range value ends in one `ParamsError` that names the
key, the value and what is allowed. Stages call `load_params()` first thing.
"""
from __future__ import annotations

import copy
import math
from pathlib import Path

import yaml

from .errors import ParamsError

MODELS = ("custom_resnet", "resnet18")
OPTIMIZERS = ("adam", "sgd")
PRECISIONS = ("auto", "bf16", "fp16", "fp32")
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune-no-cudagraphs", "max-autotune")  # torch.compile's
LR_RULES = ("minimum", "valley", "steepest")  # cifarpipe.lr_rules implements each
LRMIN_RULES = ("fall_start", "divide")
GRADCAM_METHODS = ("gradcam", "gradcam++")


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v):
    return (isinstance(v, (int, float)) and not isinstance(v, bool)) and math.isfinite(v)


def positive_int(v):
    return _is_int(v) and v > 0, "an integer > 0"


def non_negative_int(v):
    return _is_int(v) and v >= 0, "an integer >= 0"


def positive_number(v):
    return _is_num(v) and v > 0, "a number > 0"


def non_negative_number(v):
    return _is_num(v) and v >= 0, "a number >= 0"


def probability(v):
    return _is_num(v) and 0 <= v <= 1, "a number between 0 and 1"


def boolean(v):
    return isinstance(v, bool), "true or false"


def text(v):
    return isinstance(v, str) and v != "", "a non-empty string"


def optional(check):
    def optional_check(v):
        ok, allowed = check(v)
        return v is None or ok, f"null or {allowed}"
    return optional_check


def one_of(*choices):
    def one_of_check(v):
        return v in choices, "one of " + ", ".join(map(str, choices))
    return one_of_check


def device_name(v):
    ok = v in ("auto", "cpu", "cuda") or (isinstance(v, str) and v.startswith("cuda:") and v[5:].isdigit())
    return ok, "auto, cpu, cuda or cuda:K (a GPU index)"


def md5_hex(v):
    ok = isinstance(v, str) and len(v) == 32 and all(c in "0123456789abcdef" for c in v.lower())
    return ok, "32 hexadecimal digits (the archive's md5)"


def url(v):
    ok = isinstance(v, str) and v.split("://", 1)[0] in ("http", "https", "file") and "://" in v
    return ok, "an http://, https:// or file:// URL"


def fill_colour(v):
    return v == "mean" or (_is_int(v) and 0 <= v <= 255), "mean or an integer 0..255"


def layer_list(v):
    ok = v == "auto" or (isinstance(v, list) and len(v) > 0 and all(isinstance(x, str) for x in v))
    return ok, "auto or a non-empty list of block names"


def method_list(v):
    ok = isinstance(v, list) and len(v) > 0 and all(m in GRADCAM_METHODS for m in v)
    return ok, "a non-empty list of " + ", ".join(GRADCAM_METHODS)


SCHEMA = {
    "data": {"url": url, "md5": md5_hex, "train_subset": optional(positive_int), "test_subset": optional(positive_int)},
    "model": {"name": one_of(*MODELS)},
    "augment": {
        "pad": non_negative_int, "crop": positive_int, "flip": probability, "cutout": non_negative_int,
        "fill": fill_colour,
    },
    "optim": {
        "name": one_of(*OPTIMIZERS), "lr": optional(positive_number), "weight_decay": non_negative_number,
        "momentum": probability, "nesterov": boolean,
    },
    "schedule": {"epochs": positive_int, "peak_epoch": positive_number, "lrmin_div": positive_number},
    "train": {
        "batch_size": positive_int, "seed": non_negative_int, "device": device_name,
        "precision": one_of(*PRECISIONS), "channels_last": boolean, "compile": boolean,
        "compile_mode": one_of(*COMPILE_MODES), "deterministic": boolean,
        "gpus": positive_int,
    },
    "lr_find": {
        "start_lr": positive_number, "end_lr": positive_number, "iterations": positive_int,
        "smooth": probability, "diverge": positive_number,
    },
    "lr_pick": {
        "rule": one_of(*LR_RULES), "min_div": positive_number, "lrmin": one_of(*LRMIN_RULES),
        "fall_frac": probability, "skip_start": non_negative_int, "skip_end": non_negative_int,
    },
    "evaluate": {"target": probability, "gallery": positive_int, "tta_flip": boolean},
    "gradcam": {
        "images": positive_int, "correct_images": non_negative_int, "layers": layer_list,
        "min_size": positive_int, "methods": method_list,
    },
    "runtime": {
        "download_timeout_s": positive_number, "download_retries": positive_int, "download_max_mb": positive_number,
        "download_deadline_s": positive_number, "eval_batch_size": positive_int, "progress_updates": positive_int,
        "checkpoint": boolean,
    },
}

IMAGE_SIZE = 32  # CIFAR-10 images are 32x32; a fact of the data set, not a setting


def _fail(key, value, allowed):
    raise ParamsError(f"params.yaml: {key} = {value!r} is not allowed: expected {allowed}. "
                      f"Fix it in params.yaml (or in your `dvc exp run -S {key}=...`).")


def validate(params: dict) -> dict:
    """Check `params` against SCHEMA and the rules that tie keys together; return it unchanged."""
    if not isinstance(params, dict):
        raise ParamsError("params.yaml must be a mapping of groups (data, model, ...); got "
                          f"{type(params).__name__}")
    for group, keys in params.items():
        if group not in SCHEMA:
            raise ParamsError(f"params.yaml: unknown group {group!r}; known groups: {', '.join(SCHEMA)}")
        if not isinstance(keys, dict):
            raise ParamsError(f"params.yaml: {group} must be a mapping of keys, got {keys!r}")
        for key in keys:
            if key not in SCHEMA[group]:
                raise ParamsError(f"params.yaml: unknown key {group}.{key}; {group} has: "
                                  f"{', '.join(SCHEMA[group])}")
    for group, checks in SCHEMA.items():
        for key, check in checks.items():
            if key not in params.get(group, {}):
                raise ParamsError(f"params.yaml: missing key {group}.{key} ({check(None)[1]})")
            ok, allowed = check(params[group][key])
            if not ok:
                _fail(f"{group}.{key}", params[group][key], allowed)

    aug, sched, lrf, pick = params["augment"], params["schedule"], params["lr_find"], params["lr_pick"]
    if aug["crop"] > IMAGE_SIZE + 2 * aug["pad"]:
        _fail("augment.crop", aug["crop"], f"at most image size + 2 * pad = {IMAGE_SIZE + 2 * aug['pad']}")
    if aug["cutout"] > aug["crop"]:
        _fail("augment.cutout", aug["cutout"], f"at most the crop size {aug['crop']}")
    if not sched["peak_epoch"] < sched["epochs"]:
        _fail("schedule.peak_epoch", sched["peak_epoch"], f"less than schedule.epochs = {sched['epochs']}")
    if sched["lrmin_div"] < 1:
        _fail("schedule.lrmin_div", sched["lrmin_div"], "a number >= 1 (LRMIN = LRMAX / lrmin_div)")
    if not lrf["start_lr"] < lrf["end_lr"]:
        _fail("lr_find.start_lr", lrf["start_lr"], f"less than lr_find.end_lr = {lrf['end_lr']}")
    if lrf["iterations"] < pick["skip_start"] + pick["skip_end"] + 3:
        _fail("lr_find.iterations", lrf["iterations"], "at least lr_pick.skip_start + lr_pick.skip_end + 3")
    if params["train"]["gpus"] > 1 and params["train"]["device"].startswith("cuda:"):
        _fail("train.device", params["train"]["device"], "auto, cuda or cpu when train.gpus > 1 (rank K trains on "
              "GPU K)")
    if pick["min_div"] < 1:
        _fail("lr_pick.min_div", pick["min_div"], "a number >= 1 (LRMAX = LR at the loss minimum / min_div)")
    if not 0 < pick["fall_frac"] < 1:
        _fail("lr_pick.fall_frac", pick["fall_frac"], "a number strictly between 0 and 1")
    if lrf["diverge"] <= 1:
        _fail("lr_find.diverge", lrf["diverge"], "a number > 1 (a multiple of the best loss)")
    return params


def load_params(path: str | Path = "params.yaml", overrides: dict | None = None) -> dict:
    """Load and validate params.yaml. `overrides` maps dotted keys to values (used by tests and benchmarks)."""
    path = Path(path)
    try:
        params = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ParamsError(f"{path} not found: run the stage from the repository root") from None
    except yaml.YAMLError as err:
        raise ParamsError(f"{path} is not valid YAML: {err}") from None
    params = copy.deepcopy(params)
    for dotted, value in (overrides or {}).items():
        group, key = dotted.split(".", 1)
        params.setdefault(group, {})[key] = value
    return validate(params)


class DeclaredParams(dict):
    """A params group (or the whole set) holding only what a stage declares; any other key fails loudly."""

    def __init__(self, values: dict, stage: str, prefix: str = ""):
        super().__init__(values)
        self.stage, self.prefix = stage, prefix

    def __missing__(self, key):
        raise KeyError(f"stage {self.stage} read params.yaml key {self.prefix}{key}, which its dvc.yaml entry does "
                       f"not declare: a change to it would not rerun the stage. Add {self.prefix}{key} to the "
                       f"stage's params in dvc.yaml (if it can change the stage's outputs) or move it to runtime")


def declared_params(stage: str, dvc_yaml: str | Path = "dvc.yaml") -> list[str]:
    """The params.yaml keys (`group` or `group.key`) that dvc.yaml declares for `stage`."""
    try:
        entry = yaml.safe_load(Path(dvc_yaml).read_text())["stages"][stage]
    except (FileNotFoundError, KeyError, TypeError):
        raise ParamsError(f"{dvc_yaml} has no stage {stage!r}: run the stage from the repository root") from None
    declared = entry.get("params", [])
    if not all(isinstance(k, str) for k in declared):
        raise ParamsError(f"{dvc_yaml}: stage {stage} declares params of another file; all params live in params.yaml")
    return declared


def restrict(params: dict, declared: list[str], stage: str) -> DeclaredParams:
    """The part of `params` that `declared` names: whole groups, or single keys of a group."""
    view = {}
    for name in declared:
        group, _, key = name.partition(".")
        if group not in params:
            raise ParamsError(f"dvc.yaml: stage {stage} declares {name}, which params.yaml lacks")
        if not key:
            view[group] = DeclaredParams(params[group], stage, f"{group}.")
            continue
        if key not in params[group]:
            raise ParamsError(f"dvc.yaml: stage {stage} declares {name}, which params.yaml lacks")
        view.setdefault(group, DeclaredParams({}, stage, f"{group}."))[key] = params[group][key]
    return DeclaredParams(view, stage)


def stage_params(stage: str, path: str | Path = "params.yaml", dvc_yaml: str | Path = "dvc.yaml") -> DeclaredParams:
    """Validate the whole params.yaml, then return only the params dvc.yaml declares for `stage`.

    A stage that reads a key it does not declare fails at once, in the tests, instead of reusing a stale
    cache in a user's hands when that key changes.
    """
    return restrict(load_params(path), declared_params(stage, dvc_yaml), stage)


def runtime_settings(path: str | Path = "params.yaml") -> dict:
    """The `runtime` group: settings that cannot change any result, read by any stage, declared by none."""
    return load_params(path)["runtime"]
