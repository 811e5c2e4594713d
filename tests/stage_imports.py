"""The repository files a stage runs: its script and every repo module it imports, transitively.

Found by reading the import statements (anywhere in a file, functions included), so a module imported
lazily inside a function counts too. Used by tests/test_dvc_yaml.py to hold dvc.yaml's deps exact.
"""
from __future__ import annotations

import ast
from pathlib import Path

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
