"""What reruns what: the repository files each stage runs, and which stages an edit of a file reruns.

DVC reruns a stage when a file in its `deps` changes, so dvc.yaml must list every file a stage runs: its
script and each module it imports, transitively. `stage_files` finds them by reading the import statements
(anywhere in a file, functions included, so a lazy import counts too); tests/test_dvc_yaml.py holds
dvc.yaml to it. `reruns_table` turns dvc.yaml into the README's table:

    cifarpipe reruns
"""
from __future__ import annotations

import ast
from pathlib import Path

import pandas as pd
import yaml

PACKAGES = ("cifarpipe", "stages")


def _module_file(root: Path, dotted: str) -> Path | None:
    base = root.joinpath(*dotted.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def _imports(root: Path, path: Path) -> set[str]:
    """Dotted names of the repo modules `path` imports (packages included, as importing runs their __init__)."""
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
            continue  # `from cifarpipe.x import some_function`: the name is not a module
        files.add(path.relative_to(root).as_posix())
        todo.extend(_imports(root, path))
    return files


def code_deps(root: Path) -> dict[str, set[str]]:
    """{stage: the .py files dvc.yaml lists as its deps}."""
    stages = yaml.safe_load((root / "dvc.yaml").read_text())["stages"]
    return {name: {d for d in stage.get("deps", []) if d.endswith(".py")} for name, stage in stages.items()}


def reruns_table(root: Path) -> pd.DataFrame:
    """One row per file of the package: the stages whose deps list it, i.e. those an edit of it reruns."""
    deps = code_deps(root)
    files = sorted(p.relative_to(root).as_posix() for p in (root / "cifarpipe").rglob("*.py"))
    rows = []
    for path in files:
        stages = [name for name, listed in deps.items() if path in listed]
        reruns = ("no stage (a tool, not run by the pipeline)" if not stages else
                  "every stage" if len(stages) == len(deps) else ", ".join(stages))
        rows.append({"module": f"`{path}`", "an edit reruns": reruns})
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> None:
    import argparse

    ap = argparse.ArgumentParser(prog="cifarpipe reruns", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", type=Path, default=Path("."), help="the project (default: here)")
    print(reruns_table(ap.parse_args(argv).root).to_markdown(index=False))
