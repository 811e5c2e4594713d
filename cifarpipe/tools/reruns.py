"""Which stages an edit of each folder reruns, from dvc.yaml's deps.

The code each stage runs is read off its imports, so a dep dvc.yaml lacks shows as a test failure
(docs/reruns.md).
"""
from __future__ import annotations

import ast
from pathlib import Path

import pandas as pd

from ..core.errors import ToolError
from ..core.pipeline import read_pipeline

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


def is_docstring_only(root: Path, path: str) -> bool:
    body = ast.parse((root / path).read_text()).body
    return len(body) <= 1 and all(isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant) for n in body)


def needed_files(root: Path, module: str) -> set[str]:
    """The files `python -m <module>` loads whose edits can change what it writes: less NOT_DEPS and the
    packages' __init__.py files, each a docstring only (tests/test_reruns.py)."""
    return {f for f in stage_files(root, module) if f not in NOT_DEPS
            and not (f.endswith("/__init__.py") and is_docstring_only(root, f))}


def covers(dep: str, path: str) -> bool:
    return path == dep or path.startswith(dep.rstrip("/") + "/")


def code_dep(path: str) -> str:
    """The dvc.yaml dep that covers a file by default: its folder for a file inside cifarpipe/<folder>/, else
    the file."""
    parts = path.split("/")
    return "/".join(parts[:2]) if parts[0] == "cifarpipe" and len(parts) > 2 else path


def code_deps_of(root: Path, module: str) -> set[str]:
    """The code deps `python -m <module>` needs in dvc.yaml, folder by folder: its files, a package folder
    standing for its files."""
    return {code_dep(path) for path in needed_files(root, module)}


def code_deps(root: Path) -> dict[str, set[str]]:
    """{stage: the code (cifarpipe/..., stages/...) dvc.yaml lists as its deps: folders, or single files of a
    folder where the stage runs only those}."""
    return {name: stage.code for name, stage in read_pipeline(root / "dvc.yaml").stages.items()}


def deps_mismatch(root: Path, stage: str) -> tuple[set[str], set[str]]:
    """(files the stage runs that no listed dep covers, listed deps that cover nothing it runs)."""
    runs, listed = needed_files(root, f"stages.{stage}"), code_deps(root)[stage]
    return ({f for f in runs if not any(covers(d, f) for d in listed)},
            {d for d in listed if not any(covers(d, f) for f in runs)})


def reruns_table(root: Path) -> pd.DataFrame:
    """One row per folder of the package (per file, where a stage lists single files of it; and each file at
    its top): the stages an edit of it reruns."""
    deps = code_deps(root)
    files = sorted(p.relative_to(root).as_posix() for p in (root / "cifarpipe").rglob("*.py")
                   if "__pycache__" not in p.parts)
    split = {code_dep(d) for listed in deps.values() for d in listed if d.endswith(".py")}
    entries = sorted({f if code_dep(f) in split else code_dep(f) for f in files
                      if not (code_dep(f) in split and f.endswith("/__init__.py"))})
    rows = []
    for entry in entries:
        stages = [name for name, listed in deps.items() if any(covers(d, entry) or covers(entry, d)
                                                              for d in listed)]
        reason = NOT_DEPS.get(entry, "a tool, not run by the pipeline")
        reruns = (f"no stage ({reason})" if not stages else
                  "every stage" if len(stages) == len(deps) else ", ".join(stages))
        rows.append({"code": f"`{entry}/`" if not entry.endswith(".py") else f"`{entry}`",
                     "an edit reruns": reruns})
    return pd.DataFrame(rows)


def parser() -> argparse.ArgumentParser:
    import argparse

    ap = argparse.ArgumentParser(prog="cifarpipe reruns", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", type=Path, default=Path("."), help="the project (default: here)")
    return ap


def main(argv: list[str] | None = None) -> None:
    root = parser().parse_args(argv).root
    if not (root / "dvc.yaml").exists():
        raise ToolError(f"{root / 'dvc.yaml'} not found: run `cifarpipe reruns` in the project, or give "
                        "--root")
    print(reruns_table(root).to_markdown(index=False))
