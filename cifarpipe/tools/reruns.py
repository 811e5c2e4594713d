"""What reruns what: the code each stage runs (read off its imports), and which stages an edit of a folder
reruns (docs/reruns.md).

    cifarpipe reruns
"""
from __future__ import annotations

import ast
from pathlib import Path

import pandas as pd
import yaml

PACKAGES = ("cifarpipe", "stages")
# Files every stage loads whose edits cannot change an output, so no stage lists them as a dep
# (tests/test_reruns.py holds each to its reason).
NOT_DEPS = {"cifarpipe/__init__.py": "a docstring only",
            "cifarpipe/messages.py": "the words of errors: a failing stage writes nothing"}


def _module_file(root: Path, dotted: str) -> Path | None:
    base = root.joinpath(*dotted.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def _imports(root: Path, path: Path) -> set[str]:
    """Dotted names of the repo modules `path` imports (packages included, as importing runs their
    __init__)."""
    package = ".".join(path.relative_to(root).with_suffix("").parts[:-1])
    if path.name == "__init__.py":
        package = ".".join(path.relative_to(root).parts[:-1])
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parent = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([node.module] if node.module else []))
            else:
                base = node.module
            names = [base] + [f"{base}.{alias.name}" for alias in node.names]  # `from pkg import module`
        else:
            continue
        for name in names:
            if name.split(".")[0] in PACKAGES:
                parts = name.split(".")
                found.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))  # parents run too
    return found


def stage_files(root: Path, module: str) -> set[str]:
    """Repo-relative paths of the files `python -m <module>` loads from the repository."""
    seen: set[str] = set()
    todo = [module] + [".".join(module.split(".")[:i]) for i in range(1, len(module.split(".")))]
    files: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        path = _module_file(root, name)
        if path is None:
            continue  # `from cifarpipe.core.paths import per_seed`: the last name is not a module
        files.add(path.relative_to(root).as_posix())
        todo.extend(_imports(root, path))
    return files


def code_dep(path: str) -> str:
    """The dvc.yaml dep that covers a file: its folder for a file inside cifarpipe/<folder>/, else the
    file."""
    parts = path.split("/")
    return "/".join(parts[:2]) if parts[0] == "cifarpipe" and len(parts) > 2 else path


def code_deps_of(root: Path, module: str) -> set[str]:
    """The code deps `python -m <module>` needs in dvc.yaml: its files, a package folder standing for its
    files, less NOT_DEPS."""
    return {code_dep(path) for path in stage_files(root, module)} - set(NOT_DEPS)


def code_deps(root: Path) -> dict[str, set[str]]:
    """{stage: the code (cifarpipe/..., stages/...) dvc.yaml lists as its deps}."""
    stages = yaml.safe_load((root / "dvc.yaml").read_text())["stages"]
    return {name: {d for d in stage.get("deps", []) if d.split("/")[0] in PACKAGES}
            for name, stage in stages.items()}


def reruns_table(root: Path) -> pd.DataFrame:
    """One row per folder of the package (and file at its top): the stages an edit of it reruns."""
    deps = code_deps(root)
    entries = sorted({code_dep(p.relative_to(root).as_posix()) for p in (root / "cifarpipe").rglob("*.py")
                      if "__pycache__" not in p.parts})
    rows = []
    for entry in entries:
        stages = [name for name, listed in deps.items() if entry in listed]
        reason = NOT_DEPS.get(entry, "a tool, not run by the pipeline")
        reruns = (f"no stage ({reason})" if not stages else
                  "every stage" if len(stages) == len(deps) else ", ".join(stages))
        rows.append({"code": f"`{entry}/`" if not entry.endswith(".py") else f"`{entry}`",
                     "an edit reruns": reruns})
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> None:
    import argparse

    ap = argparse.ArgumentParser(prog="cifarpipe reruns", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", type=Path, default=Path("."), help="the project (default: here)")
    print(reruns_table(ap.parse_args(argv).root).to_markdown(index=False))
