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
DEVICES = ("auto", "cpu", "cuda")
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
    "data": {
        "url": url, "md5": md5_hex, "train_subset": optional(positive_int),
        "test_subset": optional(positive_int), "timeout_s": positive_number, "retries": positive_int,
    },
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
        "batch_size": positive_int, "eval_batch_size": positive_int, "seed": non_negative_int,
        "device": one_of(*DEVICES), "bf16": boolean, "channels_last": boolean, "compile": boolean,
        "tta_flip": boolean, "progress_updates": positive_int, "checkpoint": boolean,
    },
    "lr_find": {
        "start_lr": positive_number, "end_lr": positive_number, "iterations": positive_int,
        "smooth": probability, "diverge": positive_number, "skip_start": non_negative_int,
        "skip_end": non_negative_int,
    },
    "evaluate": {"target": probability, "gallery": positive_int},
    "gradcam": {
        "images": positive_int, "correct_images": non_negative_int, "layers": layer_list,
        "min_size": positive_int, "methods": method_list,
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

    aug, sched, lrf = params["augment"], params["schedule"], params["lr_find"]
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
    if lrf["iterations"] < lrf["skip_start"] + lrf["skip_end"] + 2:
        _fail("lr_find.iterations", lrf["iterations"], "at least lr_find.skip_start + lr_find.skip_end + 2")
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
