"""Read params.yaml, check it, and hand each stage a typed view of only the params dvc.yaml declares for it.

A bad value ends in one `ParamsError` line naming the key, the value and what is allowed (docs/design.md)."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .. import messages
from .errors import ParamsError, UndeclaredParamError
from .pipeline import SAFE_LOADER, read_pipeline


IMAGE_SIZE = 32  # CIFAR-10 images are 32x32: a fact of the data set, not a setting

Count = Annotated[int, Field(gt=0)]
CountOrZero = Annotated[int, Field(ge=0)]
Positive = Annotated[float, Field(gt=0)]
PositiveOrZero = Annotated[float, Field(ge=0)]
Fraction = Annotated[float, Field(ge=0, le=1)]
Name = Annotated[str, Field(min_length=1)]  # checked against its registry where it is used (`choose`)


def _fail(key: str, value, allowed: str):
    raise ParamsError(messages.not_allowed(key, value, allowed))


class Group(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


class Data(Group):
    url: Annotated[str, Field(pattern=r"^(https?|file)://.+",
                              description="an http://, https:// or file:// URL")]
    md5: Annotated[str, Field(pattern=r"^[0-9a-fA-F]{32}$",
                              description="32 hexadecimal digits (the archive's md5)")]
    train_subset: Count | None
    test_subset: Count | None


class Model(Group):
    name: Name
    width: Count


class Augment(Group):
    pad: CountOrZero
    crop: Count
    flip: Fraction
    cutout: CountOrZero
    fill: Literal["mean"] | Annotated[int, Field(ge=0, le=255)]

    @model_validator(mode="after")
    def _fits(self):
        if self.crop > IMAGE_SIZE + 2 * self.pad:
            _fail("augment.crop", self.crop, f"it should be at most image size + 2 * pad = "
                  f"{IMAGE_SIZE + 2 * self.pad}")
        if self.cutout > self.crop:
            _fail("augment.cutout", self.cutout, f"it should be at most the crop size {self.crop}")
        return self


class Optim(Group):
    name: Name
    lr: Positive | None
    weight_decay: PositiveOrZero
    momentum: Fraction
    beta2: Annotated[float, Field(ge=0, lt=1)]
    nesterov: bool


class Schedule(Group):
    epochs: Count
    peak_epoch: Positive
    lrmin_div: Annotated[float, Field(ge=1)]

    @model_validator(mode="after")
    def _peak_inside(self):
        if not self.peak_epoch < self.epochs:
            _fail("schedule.peak_epoch", self.peak_epoch,
                  f"it should be less than schedule.epochs = {self.epochs}")
        return self


class Train(Group):
    batch_size: Count
    seeds: Annotated[list[CountOrZero], Field(min_length=1,
                                              description="a non-empty list of distinct integers >= 0")]

    @model_validator(mode="after")
    def _distinct(self):
        if len(set(self.seeds)) < len(self.seeds):
            _fail("train.seeds", self.seeds, "it should be a list of distinct seeds")
        return self


class ComputeSettings(Group):
    """How the math runs (params.yaml's `compute`), apart from what it computes."""

    device: Annotated[str, Field(pattern=r"^(auto|cpu|cuda(:\d+)?)$",
                                 description="auto, cpu, cuda or cuda:K (a GPU index)")]
    precision: Name
    channels_last: bool
    compile: bool
    compile_mode: Name
    deterministic: bool
    gpus: Count

    @model_validator(mode="after")
    def _consistent(self):
        if self.gpus > 1 and self.device.startswith("cuda:"):
            _fail("compute.device", self.device, "it should be auto, cuda or cpu when compute.gpus > 1 (rank K "
                  "trains on the K-th GPU it claims)")
        return self


class LrFind(Group):
    seed: CountOrZero
    start_lr: Positive
    end_lr: Positive
    iterations: Count
    smooth: Annotated[float, Field(gt=0, le=1)]
    diverge: Annotated[float, Field(gt=1)]

    @model_validator(mode="after")
    def _rising(self):
        if not self.start_lr < self.end_lr:
            _fail("lr_find.start_lr", self.start_lr, f"it should be less than lr_find.end_lr = {self.end_lr}")
        return self


class LrPick(Group):
    rule: Name
    min_div: Annotated[float, Field(ge=1)]
    lrmin: Name
    fall_frac: Annotated[float, Field(gt=0, lt=1)]
    skip_start: CountOrZero
    skip_end: CountOrZero


class Preview(Group):
    samples: Count
    seed: CountOrZero


class Evaluate(Group):
    target: Fraction
    gallery: Count
    tta_flip: bool
    ece_bins: Count


class Gradcam(Group):
    images: Count
    correct_images: CountOrZero
    layers: Annotated[Literal["auto"] | Annotated[list[Name], Field(min_length=1)],
                      Field(description="auto or a non-empty list of block names")]
    deepest: Count
    min_size: Count
    methods: Annotated[list[Name], Field(min_length=1, description="a non-empty list of method names")]


class Corrupt(Group):
    source: Literal["generate", "published"]
    corruptions: Annotated[list[Name], Field(min_length=1,
                                             description="a non-empty list of corruption names")]
    severities: Annotated[list[Annotated[int, Field(ge=1, le=5)]],
                          Field(min_length=1, description="a non-empty list of severities 1 to 5")]
    images: Count
    seed: CountOrZero
    url: Annotated[str, Field(pattern=r"^(https?|file)://.+",
                              description="an http://, https:// or file:// URL")]
    md5: Annotated[str, Field(pattern=r"^[0-9a-fA-F]{32}$",
                              description="32 hexadecimal digits (the archive's md5)")]

    @model_validator(mode="after")
    def _distinct(self):
        for key in ("corruptions", "severities"):
            if len(set(getattr(self, key))) < len(getattr(self, key)):
                _fail(f"corrupt.{key}", getattr(self, key), f"it should be a list of distinct {key}")
        return self


class Export(Group):
    max_logit_diff: Positive
    max_prob_diff: Positive
    min_agreement: Fraction


class Margins(Group):
    test_acc: Positive
    corrupt_acc: Positive
    ece: Positive


class Noise(Group):
    confidence: Annotated[float, Field(gt=0, lt=1)]
    power: Annotated[float, Field(gt=0, lt=1)]
    margin: Margins
    first_seeds: Annotated[int, Field(strict=True, ge=2)]
    round_seeds: Count
    max_seeds: Count
    spending: Name

    @model_validator(mode="after")
    def _rounds(self):
        if self.max_seeds < self.first_seeds:
            _fail("noise.max_seeds", self.max_seeds,
                  f"it should be at least noise.first_seeds = {self.first_seeds}")
        return self


class Runtime(Group):
    download_timeout_s: Positive
    download_retries: Count
    download_backoff_s: PositiveOrZero
    download_max_mb: Positive
    download_deadline_s: Positive
    eval_batch_size: Count
    progress_updates: Count
    checkpoint: bool
    workers: Count | None


class Params(Group):
    data: Data
    model: Model
    augment: Augment
    optim: Optim
    schedule: Schedule
    train: Train
    compute: ComputeSettings
    lr_find: LrFind
    lr_pick: LrPick
    preview: Preview
    evaluate: Evaluate
    gradcam: Gradcam
    corrupt: Corrupt
    export: Export
    noise: Noise
    runtime: Runtime

    @model_validator(mode="after")
    def _enough_range_test(self):
        if self.lr_find.iterations < self.lr_pick.skip_start + self.lr_pick.skip_end + 3:
            _fail("lr_find.iterations", self.lr_find.iterations,
                  "it should be at least lr_pick.skip_start + lr_pick.skip_end + 3")
        return self


def choose(registry, key: str, value):
    """`registry[value]` (a dict) or `value` (a tuple of names) if it is one of the registry's names, else the
    one-line error naming `key`, `value` and the names."""
    if isinstance(value, str) and value in registry:
        return registry[value] if isinstance(registry, dict) else value
    _fail(key, value, messages.one_of(registry))


def _explain(error: dict, params: dict, alternatives: list[str]) -> str:
    """One line for a pydantic error, in the words of params.yaml (`alternatives`: what each member of a union
    type said)."""
    loc, kind = error["loc"], error["type"]
    group = loc[0]
    if len(loc) == 1:
        if kind == "extra_forbidden":
            return messages.unknown_group(group, Params.model_fields)
        if kind == "missing":
            return messages.missing_group(group)
        return messages.not_a_mapping(group, params[group])
    key, known = loc[1], Params.model_fields[group].annotation.model_fields
    if kind == "extra_forbidden":
        return messages.unknown_key(group, key, known)
    if kind == "missing":
        return messages.missing_key(group, key)
    field = known[key]
    allowed = (f"it should be {field.description}" if field.description else
               " or ".join(dict.fromkeys(m.replace("Input should", "it should") for m in alternatives)))
    return messages.not_allowed(f"{group}.{key}", params[group][key], allowed)


# keys that moved to another group: an old name gets one line naming the new one
MOVED = {f"train.{key}": f"compute.{key}" for key in ComputeSettings.model_fields}


def validate(params: dict) -> Params:
    """`params` checked against the models above, the rules that tie keys together included."""
    if not isinstance(params, dict):
        raise ParamsError(messages.params_not_a_mapping(type(params).__name__))
    for old, new in MOVED.items():
        group, key = old.split(".")
        if key in (params.get(group) or {}):
            raise ParamsError(messages.moved_key(old, new, new.split(".")[0]))
    try:
        return Params.model_validate(params)
    except ValidationError as err:
        errors = err.errors()  # a misspelt or missing key first: it explains the errors that follow from it
        first = next((e for e in errors if e["type"] in ("extra_forbidden", "missing")), errors[0])
        if isinstance(first.get("ctx", {}).get("error"), ParamsError):  # a rule tying keys together
            raise first["ctx"]["error"] from None
        alternatives = [e["msg"] for e in errors if e["loc"][:2] == first["loc"][:2]]
        raise ParamsError(_explain(first, params, alternatives)) from None


def load_params(path: str | Path = "params.yaml", overrides: dict | None = None) -> Params:
    """params.yaml, validated. `overrides` maps dotted keys to values (tests and benchmarks)."""
    path = Path(path)
    try:
        params = yaml.load(path.read_text(), Loader=SAFE_LOADER)
    except FileNotFoundError:
        raise ParamsError(messages.params_not_found(path)) from None
    except yaml.YAMLError as err:
        raise ParamsError(messages.params_not_yaml(path, err)) from None
    for dotted, value in (overrides or {}).items():
        group, key = dotted.split(".", 1)
        params.setdefault(group, {})[key] = value
    return validate(params)


class DeclaredGroup:
    """A params group holding only the keys a stage declares; reading another fails with one line."""

    def __init__(self, group: Group, keys: list[str], stage: str, name: str):
        self._group, self._keys, self._stage, self._name = group, tuple(keys), stage, name

    def __getattr__(self, key: str):
        if key.startswith("_"):
            raise AttributeError(key)
        if key not in self._keys:
            raise UndeclaredParamError(messages.undeclared_read(self._stage, f"{self._name}.{key}"))
        return getattr(self._group, key)

    def model_dump(self) -> dict:
        return {key: getattr(self._group, key) for key in self._keys}


class StageParams:
    """What a stage may read of params.yaml: the groups and keys dvc.yaml declares for it, and `runtime`."""

    def __init__(self, groups: dict[str, Group | DeclaredGroup], stage: str):
        self._groups, self._stage = groups, stage

    def __getattr__(self, group: str):
        if group.startswith("_"):
            raise AttributeError(group)
        if group not in self._groups:
            raise UndeclaredParamError(messages.undeclared_read(self._stage, group))
        return self._groups[group]

    def model_dump(self) -> dict:
        """The declared params as plain values (runtime left out: it cannot change a result)."""
        return {name: group.model_dump() for name, group in self._groups.items() if name != "runtime"}


def declared_params(stage: str, dvc_yaml: str | Path = "dvc.yaml") -> list[str]:
    """The params.yaml keys (`group` or `group.key`) that dvc.yaml declares for `stage`."""
    try:
        declared = read_pipeline(dvc_yaml).stages[stage].params
    except (FileNotFoundError, KeyError):
        raise ParamsError(messages.no_such_stage(dvc_yaml, stage)) from None
    if not all(isinstance(k, str) for k in declared):
        raise ParamsError(messages.params_of_another_file(dvc_yaml, stage))
    return list(declared)


def restrict(params: Params, declared: list[str], stage: str) -> StageParams:
    """The part of `params` that `declared` names (whole groups, or single keys of a group), and runtime."""
    whole, keys = {}, {}
    for name in declared:
        group, _, key = name.partition(".")
        if name in MOVED:
            raise ParamsError(f"dvc.yaml: stage {stage} declares {name}, which is now {MOVED[name]}")
        if group not in Params.model_fields or (key and key not in type(getattr(params, group)).model_fields):
            raise ParamsError(messages.declared_but_lacking(stage, name))
        if key:
            keys.setdefault(group, []).append(key)
        else:
            whole[group] = getattr(params, group)
    partial = {group: DeclaredGroup(getattr(params, group), listed, stage, group)
               for group, listed in keys.items() if group not in whole}
    return StageParams({**partial, **whole, "runtime": params.runtime}, stage)


def stage_params(stage: str, path: str | Path = "params.yaml",
                 dvc_yaml: str | Path = "dvc.yaml") -> StageParams:
    """The whole params.yaml validated, then only what dvc.yaml declares for `stage` (and runtime)."""
    return restrict(load_params(path), declared_params(stage, dvc_yaml), stage)


def runtime_settings(path: str | Path = "params.yaml") -> Runtime:
    """The `runtime` group: settings that cannot change any result, read by any stage, declared by none."""
    return load_params(path).runtime
