"""The words of the errors the core reports: a failing stage writes nothing, so no output depends on them."""

# The one install (scripts/install.py, run from the project's folder), as every error that asks for a package
# names it: tests/test_environment.py checks that every place that installs calls it
INSTALL = "python3 scripts/install.py"


def not_allowed(key: str, value, allowed: str) -> str:
    return (f"params.yaml: {key} = {value!r} is not allowed: {allowed}. "
            f"Fix it in params.yaml (or in your `dvc exp run -S {key}=...`).")


def one_of(names) -> str:
    return "it should be one of " + ", ".join(names)


def unknown_group(group: str, known) -> str:
    return f"params.yaml: unknown group {group!r}; known groups: {', '.join(known)}"


def missing_group(group: str) -> str:
    return f"params.yaml: missing group {group}"


def not_a_mapping(group: str, value) -> str:
    return f"params.yaml: {group} must be a mapping of keys, got {value!r}"


def unknown_key(group: str, key: str, known) -> str:
    return f"params.yaml: unknown key {group}.{key}; {group} has: {', '.join(known)}"


def missing_key(group: str, key: str) -> str:
    return f"params.yaml: missing key {group}.{key}"


def moved_key(old: str, new: str, group: str) -> str:
    return (f"params.yaml: {old} is now {new}: move it under `{group}:` in params.yaml "
            f"(and write `dvc exp run -S {new}=...`)")


def params_not_a_mapping(kind: str) -> str:
    return f"params.yaml must be a mapping of groups (data, model, ...); got {kind}"


def params_not_found(path) -> str:
    return f"{path} not found: run the stage from the repository root"


def params_not_yaml(path, error) -> str:
    return f"{path} is not valid YAML: {error}"


def undeclared_read(stage: str, key: str) -> str:
    return (f"stage {stage} read params.yaml key {key}, which its dvc.yaml entry does not declare: a change "
            f"to it would not rerun the stage. Add {key} to the stage's params in dvc.yaml (if it can change "
            "the stage's outputs) or move it to runtime")


def no_such_stage(dvc_yaml, stage: str) -> str:
    return f"{dvc_yaml} has no stage {stage!r}: run the stage from the repository root"


def params_of_another_file(dvc_yaml, stage: str) -> str:
    return (f"{dvc_yaml}: stage {stage} declares params of another file; all params live in "
            "params.yaml")


def declared_but_lacking(stage: str, name: str) -> str:
    return f"dvc.yaml: stage {stage} declares {name}, which params.yaml lacks"


def input_not_made_yet(missing: str, stage: str) -> str:
    return (f"{missing} does not exist yet: stage {stage} makes it. Run `dvc repro {stage}` first (it also "
            "runs the stages before it), or `dvc repro` for the whole pipeline.")
