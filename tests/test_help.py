"""Every command answers --help (issue 47): each `cifarpipe` command and subcommand, found in the CLI's
argparse tree (and in a command module's own parser() where it has subcommands), and every script in scripts/
and benchmarks/. Each prints its usage on stdout, exits 0 and writes nothing: they run in a copy of the tree,
with HOME and OUT in empty folders, and every file there is compared before and after."""
import argparse
import importlib
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import PARAMS_YAML, ROOT
from cifarpipe.tools.cli import parser, subcommands

SCRIPTS = sorted(p.relative_to(ROOT).as_posix() for folder in ("scripts", "benchmarks")
                 for pattern in ("*.py", "*.sh") for p in (ROOT / folder).glob(pattern))
# a command's module another branch brings, and why its help is not checked until it is here
PENDING: dict[str, str] = {}  # a command's module that may be absent, and why


def tree_commands(ap: argparse.ArgumentParser, words: tuple = ()) -> list[tuple[tuple[str, ...], str]]:
    """[(words, the module that runs them, or "" for a group)] below the parser: a command module's own
    subcommands too, where its parser() has some."""
    found = []
    for word, sub in subcommands(ap).items():
        module = sub.get_default("module") or ""
        found.append(((*words, word), module))
        found += tree_commands(sub, (*words, word))
        own = has_spec(module) and getattr(importlib.import_module(module), "parser", None)
        found += [(w, module) for w, _ in tree_commands(own(), (*words, word))] if own else []
    return found


def has_spec(module: str) -> bool:
    if not module:
        return False
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a parent package is absent
        return False


COMMANDS = tree_commands(parser())


def test_the_tree_holds_every_command_and_the_bench_group():
    words = {" ".join(w) for w, _ in COMMANDS}
    assert {"doctor", "exps", "predict", "report", "reruns", "overrides", "slurm", "bench", "bench speed",
            "bench profile", "bench infer"} <= words
    assert SCRIPTS and "benchmarks/dot_rate.c" not in SCRIPTS and "scripts/install.py" in SCRIPTS


@pytest.fixture(scope="module")
def copy(tmp_path_factory):
    """The tree as git sees it (tracked and untracked, less what it ignores), in a folder of its own."""
    dest = tmp_path_factory.mktemp("tree") / "repo"
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.split("\0")
    for name in filter(None, files):
        if (ROOT / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)
    return dest


def snapshot(*folders: Path) -> dict[str, tuple[int, int]]:
    """{path: (mtime in ns, size)} of every file under the folders, less Python's bytecode caches."""
    return {str(p): (p.stat().st_mtime_ns, p.stat().st_size) for folder in folders for p in folder.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts}


def answers_help(command: list[str], repo: Path) -> str:
    """The stdout of `command --help` run in `repo`, once it exited 0 and wrote nothing there, in HOME or in
    OUT."""
    home, out = repo.parent / "home", repo.parent / "out"
    home.mkdir(exist_ok=True)
    out.mkdir(exist_ok=True)
    env = {**os.environ, "HOME": str(home), "OUT": str(out), "PYTHONPATH": str(repo),
           "PYTHONDONTWRITEBYTECODE": "1"}
    before = snapshot(repo, home, out)
    proc = subprocess.run([*command, "--help"], cwd=repo, env=env, capture_output=True, text=True,
                          timeout=300, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    after = snapshot(repo, home, out)
    changed = sorted(p for p in before.keys() | after.keys() if before.get(p) != after.get(p))
    assert not changed, f"{' '.join(command)} --help wrote, changed or removed {changed}"
    return proc.stdout


@pytest.mark.parametrize("words, module", COMMANDS, ids=[" ".join(w) for w, _ in COMMANDS])
def test_every_cifarpipe_command_answers_help(words, module, copy):
    if module in PENDING and not has_spec(module):
        pytest.skip(f"{module} is absent: {PENDING[module]}")
    out = answers_help([sys.executable, "-m", "cifarpipe.tools.cli", *words], copy)
    assert out.startswith(f"usage: cifarpipe {' '.join(words)}"), out


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_script_answers_help(script, copy):
    runner = ["bash"] if script.endswith(".sh") else [sys.executable]
    out = answers_help([*runner, script], copy)
    assert Path(script).name in out, out  # its usage names it


def test_top_level_help_lists_each_command_with_its_line_and_imports_no_torch():
    """The command list comes from the table: each command with its one line, and no command module (nor
    torch) is imported to print it."""
    bare = ("import runpy, sys; sys.modules['torch'] = None; sys.argv = ['cifarpipe', '--help']; "
            "runpy.run_module('cifarpipe.tools.cli', run_name='__main__')")
    proc = subprocess.run([sys.executable, "-c", bare], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    from cifarpipe.tools.cli import COMMANDS as TABLE

    lines = " ".join(proc.stdout.split())
    for words, _, line in TABLE:
        if " " not in words:
            assert f"{words} {line}" in lines, (words, proc.stdout)
    bench = subprocess.run([sys.executable, "-c", bare.replace("'--help'", "'bench', '--help'")], cwd=ROOT,
                           capture_output=True, text=True, timeout=120).stdout
    assert all(f" {word} " in bench for word in ("speed", "profile", "infer")), bench


@pytest.mark.parametrize("argv, said", [
    ([], "the following arguments are required: COMMAND"),
    (["bench"], "the following arguments are required: COMMAND"),
    (["tarin"], "invalid choice: 'tarin'"),
    (["bench", "sped"], "invalid choice: 'sped'")])
def test_a_missing_or_unknown_command_is_argparses_line_and_exit_2(argv, said):
    proc = subprocess.run([sys.executable, "-m", "cifarpipe.tools.cli", *argv], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2 and said in proc.stderr, proc.stderr
    assert proc.stderr.startswith("usage: cifarpipe") and not proc.stdout


@pytest.mark.parametrize("argv, said", [
    (["overrides", "o.yaml"], "error: o.yaml: cannot be read (No such file or directory): name a params"),
    (["overrides", "list.yaml"], "error: list.yaml: expected a mapping of dotted params.yaml keys"),
    (["overrides", "broken.yaml"], "error: broken.yaml: not YAML"),
    (["reruns"], "error: dvc.yaml not found: run `cifarpipe reruns` in the project, or give --root"),
    (["report"], "error: metrics/seeds.csv, metrics/aggregate.json not found here: run `cifarpipe report`"),
    (["bench", "speed", "--npz", "d.npz"], "error: d.npz: no such file: --npz names CIFAR-10 as an npz")])
def test_a_users_error_is_one_line_and_exit_1(tmp_path, argv, said):
    """Outside the project, or given a file that is not there or not right: the CLI's one catch prints the
    line, no traceback."""
    shutil.copy2(PARAMS_YAML, tmp_path / "params.yaml")
    (tmp_path / "list.yaml").write_text("[1, 2]\n")
    (tmp_path / "broken.yaml").write_text("a: [\n")
    proc = subprocess.run([sys.executable, "-m", "cifarpipe.tools.cli", *argv], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1 and proc.stderr.startswith(said), proc.stderr
    assert proc.stderr.count("\n") == 1 and not proc.stdout, proc.stderr
