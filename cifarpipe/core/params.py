"""Read params.yaml, check it, and hand each stage only the params dvc.yaml declares for it.

params.yaml holds every value; the models below say only what each key may hold (pydantic, strict: "24"
is not 24), so a typo (`optim.lrr`), a wrong type or an out-of-range value ends in one `ParamsError`
line that names the key, the value and what is allowed, before a stage does any work.

Keys that name one of several implementations (model.name, optim.name, train.precision,
train.compile_mode, lr_pick.rule, lr_pick.lrmin, gradcam.methods, corrupt.corruptions) are plain strings
here: each list of names lives once, in the registry of the module that implements them, which refuses an
unknown name through `choose` (the same one-line error) as soon as a stage asks for it, before any training
step. Importing those registries here would make every stage depend on every implementation.
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import ParamsError

# libyaml's parser where PyYAML has it: ten times faster than the pure-Python one, and every stage reads
# params.yaml and dvc.yaml
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

IMAGE_SIZE = 32  # CIFAR-10 images are 32x32: a fact of the data set, not a setting

Count = Annotated[int, Field(gt=0)]
CountOrZero = Annotated[int, Field(ge=0)]
Positive = Annotated[float, Field(gt=0)]
PositiveOrZero = Annotated[float, Field(ge=0)]
Fraction = Annotated[float, Field(ge=0, le=1)]
Name = Annotated[str, Field(min_length=1)]  # checked against its registry where it is used (see above)


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


class Train(Group):
    batch_size: Count
    seeds: Annotated[list[CountOrZero], Field(min_length=1,
                                              description="a non-empty list of distinct integers >= 0")]
    device: Annotated[str, Field(pattern=r"^(auto|cpu|cuda(:\d+)?)$",
                                 description="auto, cpu, cuda or cuda:K (a GPU index)")]
    precision: Name
    channels_last: bool
    compile: bool
    compile_mode: Name
    deterministic: bool
    gpus: Count


class LrFind(Group):
    seed: CountOrZero
    start_lr: Positive
    end_lr: Positive
    iterations: Count
    smooth: Annotated[float, Field(gt=0, le=1)]
    diverge: Annotated[float, Field(gt=1)]


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


class Export(Group):
    max_logit_diff: Positive
    min_agreement: Fraction


class Noise(Group):
    confidence: Annotated[float, Field(gt=0, lt=1)]
    power: Annotated[float, Field(gt=0, lt=1)]


class Runtime(Group):
    download_timeout_s: Positive
    download_retries: Count
    download_backoff_s: PositiveOrZero
    download_max_mb: Positive
    download_deadline_s: Positive
    eval_batch_size: Count
    progress_updates: Count
    checkpoint: bool


class Params(Group):
    data: Data
    model: Model
    augment: Augment
    optim: Optim
    schedule: Schedule
    train: Train
    lr_find: LrFind
    lr_pick: LrPick
    preview: Preview
    evaluate: Evaluate
    gradcam: Gradcam
    corrupt: Corrupt
    export: Export
    noise: Noise
    runtime: Runtime


def _not_allowed(key: str, value, allowed: str) -> str:
    return (f"params.yaml: {key} = {value!r} is not allowed: {allowed}. "
            f"Fix it in params.yaml (or in your `dvc exp run -S {key}=...`).")


def _fail(key: str, value, allowed: str):
    raise ParamsError(_not_allowed(key, value, allowed))


def choose(registry, key: str, value):
    """`registry[value]` (a dict) or `value` (a tuple of names) if it is one of the registry's names, else the
    one-line error naming `key`, `value` and the names."""
    if isinstance(value, str) and value in registry:
        return registry[value] if isinstance(registry, dict) else value
    _fail(key, value, "it should be one of " + ", ".join(registry))


def _explain(error: dict, params: dict, alternatives: list[str]) -> str:
    """One line for a pydantic error, in the words of params.yaml: the key, the value, what is allowed
    (`alternatives`: what each member of a union type said)."""
    loc, kind = error["loc"], error["type"]
    group = loc[0]
    if len(loc) == 1:
        if kind == "extra_forbidden":
            return f"params.yaml: unknown group {group!r}; known groups: {', '.join(Params.model_fields)}"
        if kind == "missing":
            return f"params.yaml: missing group {group}"
        return f"params.yaml: {group} must be a mapping of keys, got {params[group]!r}"
    key, known = loc[1], Params.model_fields[group].annotation.model_fields
    if kind == "extra_forbidden":
        return f"params.yaml: unknown key {group}.{key}; {group} has: {', '.join(known)}"
    if kind == "missing":
        return f"params.yaml: missing key {group}.{key}"
    field = known[key]
    allowed = (f"it should be {field.description}" if field.description else
               " or ".join(dict.fromkeys(m.replace("Input should", "it should") for m in alternatives)))
    return _not_allowed(f"{group}.{key}", params[group][key], allowed)


def _check_together(p: dict) -> None:
    """The rules that tie keys to each other."""
    aug, sched, lrf, pick = p["augment"], p["schedule"], p["lr_find"], p["lr_pick"]
    if aug["crop"] > IMAGE_SIZE + 2 * aug["pad"]:
        _fail("augment.crop", aug["crop"],
              f"it should be at most image size + 2 * pad = {IMAGE_SIZE + 2 * aug['pad']}")
    if aug["cutout"] > aug["crop"]:
        _fail("augment.cutout", aug["cutout"], f"it should be at most the crop size {aug['crop']}")
    if not sched["peak_epoch"] < sched["epochs"]:
        _fail("schedule.peak_epoch", sched["peak_epoch"],
              f"it should be less than schedule.epochs = {sched['epochs']}")
    if not lrf["start_lr"] < lrf["end_lr"]:
        _fail("lr_find.start_lr", lrf["start_lr"], f"it should be less than lr_find.end_lr = {lrf['end_lr']}")
    if lrf["iterations"] < pick["skip_start"] + pick["skip_end"] + 3:
        _fail("lr_find.iterations", lrf["iterations"],
              "it should be at least lr_pick.skip_start + lr_pick.skip_end + 3")
    if len(set(p["train"]["seeds"])) < len(p["train"]["seeds"]):
        _fail("train.seeds", p["train"]["seeds"], "it should be a list of distinct seeds")
    for key in ("corruptions", "severities"):
        if len(set(p["corrupt"][key])) < len(p["corrupt"][key]):
            _fail(f"corrupt.{key}", p["corrupt"][key], f"it should be a list of distinct {key}")
    if p["train"]["gpus"] > 1 and p["train"]["device"].startswith("cuda:"):
        _fail("train.device", p["train"]["device"],
              "it should be auto, cuda or cpu when train.gpus > 1 (rank K "
              "trains on the K-th GPU it claims)")


def validate(params: dict) -> dict:
    """Check `params` against the models above and the rules that tie keys together; return it unchanged."""
    if not isinstance(params, dict):
        raise ParamsError("params.yaml must be a mapping of groups (data, model, ...); got "
                          f"{type(params).__name__}")
    try:
        Params.model_validate(params)
    except ValidationError as err:
        errors = err.errors()  # a misspelt or missing key first: it explains the errors that follow from it
        first = next((e for e in errors if e["type"] in ("extra_forbidden", "missing")), errors[0])
        alternatives = [e["msg"] for e in errors if e["loc"][:2] == first["loc"][:2]]
        raise ParamsError(_explain(first, params, alternatives)) from None
    _check_together(params)
    return params


def load_params(path: str | Path = "params.yaml", overrides: dict | None = None) -> dict:
    """Load and validate params.yaml. `overrides` maps dotted keys to values (used by tests and
    benchmarks)."""
    path = Path(path)
    try:
        params = yaml.load(path.read_text(), Loader=SAFE_LOADER)
    except FileNotFoundError:
        raise ParamsError(f"{path} not found: run the stage from the repository root") from None
    except yaml.YAMLError as err:
        raise ParamsError(f"{path} is not valid YAML: {err}") from None
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
        raise KeyError(f"stage {self.stage} read params.yaml key {self.prefix}{key}, which its dvc.yaml "
                       "entry does not declare: a change to it would not rerun the stage. Add "
                       f"{self.prefix}{key} to the stage's params in dvc.yaml (if it can change the stage's "
                       "outputs) or move it to runtime")


def declared_params(stage: str, dvc_yaml: str | Path = "dvc.yaml") -> list[str]:
    """The params.yaml keys (`group` or `group.key`) that dvc.yaml declares for `stage`."""
    try:
        entry = yaml.load(Path(dvc_yaml).read_text(), Loader=SAFE_LOADER)["stages"][stage]
    except (FileNotFoundError, KeyError, TypeError):
        raise ParamsError(f"{dvc_yaml} has no stage {stage!r}: run the stage from the repository "
                          "root") from None
    declared = entry.get("params", [])
    if not all(isinstance(k, str) for k in declared):
        raise ParamsError(f"{dvc_yaml}: stage {stage} declares params of another file; all params live in "
                          "params.yaml")
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


def stage_params(stage: str, path: str | Path = "params.yaml",
                 dvc_yaml: str | Path = "dvc.yaml") -> DeclaredParams:
    """Validate the whole params.yaml, then return only the params dvc.yaml declares for `stage`.

    A stage that reads a key it does not declare fails at once, in the tests, instead of reusing a stale
    cache in a user's hands when that key changes.
    """
    return restrict(load_params(path), declared_params(stage, dvc_yaml), stage)


def runtime_settings(path: str | Path = "params.yaml") -> dict:
    """The `runtime` group: settings that cannot change any result, read by any stage, declared by none."""
    return load_params(path)["runtime"]
