"""The words hold: "seed" means a random seed only, and every file or module the prose names exists."""
import ast
import importlib.util
import io
import re
import subprocess
import tokenize

from conftest import ROOT

PROSE_SUFFIXES = {".py", ".md", ".yaml", ".yml", ".sh", ".toml", ".ipynb", ".in", ".cfg", ""}
A_PATH = re.compile(r"(?<![\w/.~-])cifarpipe/[\w./-]*")  # not .../OWNER/cifarpipe/blob/, not ~/cifarpipe-x/
A_MODULE = re.compile(r"(?<![\w/.@-])cifarpipe(?:\.\w+)+")  # not tests@cifarpipe.invalid
# a file of the project's other folders, and the test function of it a pytest id names (a `::test_` suffix)
A_FILE = re.compile(r"(?<![\w/.~-])((?:tests|scripts|benchmarks|docs|stages|notebooks)/[\w/.-]*\.\w+)"
                    r"(?:::(test_\w+))?")


def project_files() -> list:
    """The files of a clone: tracked, or new and not ignored."""
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout.split()
    return [ROOT / name for name in sorted(set(listed)) if (ROOT / name).is_file()]


def prose(path) -> str:
    """What people read in a file: all of a text file; a Python file's comments and docstrings."""
    text = path.read_text()
    if path.suffix != ".py":
        return text
    tokens = tokenize.generate_tokens(io.StringIO(text).readline)
    comments = [t.string for t in tokens if t.type == tokenize.COMMENT]
    docstrings = [ast.get_docstring(node) or "" for node in ast.walk(ast.parse(text))
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))]
    return "\n".join(comments + docstrings)


def names_something(dotted: str) -> bool:
    """A module of the package, or a name defined in one (cifarpipe.core.params.stage_params)."""
    parts = dotted.split(".")
    for cut in range(2, len(parts) + 1):  # the longest prefix that is a module
        try:
            found = importlib.util.find_spec(".".join(parts[:cut])) is not None
        except ModuleNotFoundError:  # the prefix before it is a module, not a package
            found = False
        if not found:  # a name defined in the module before it
            module = ".".join(parts[:cut - 1])
            return cut > 2 and len(parts) == cut and hasattr(importlib.import_module(module), parts[cut - 1])
    return True


def unresolved(files) -> list[str]:
    found = []
    for path in files:
        if path.suffix not in PROSE_SUFFIXES:
            continue
        text = prose(path)
        name = path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else path.name
        found += [f"{name}: {m.group(0)}" for m in A_PATH.finditer(text)
                  if not (ROOT / m.group(0).rstrip(".-")).exists()]
        found += [f"{name}: {m.group(0)}" for m in A_MODULE.finditer(text) if not names_something(m.group(0))]
        found += [f"{name}: {m.group(0)}" for m in A_FILE.finditer(text) if not names_a_file(m)]
    return found


def names_a_file(found) -> bool:
    """The file exists (relative to the project), and so does the test it names, if it names one."""
    path = ROOT / found.group(1).rstrip(".")
    if not path.is_file():
        return False
    return found.group(2) is None or re.search(rf"^def {found.group(2)}\(", path.read_text(), re.M) is not None


THE_SEEDS = "the seeds" + "'"  # spelt apart, so this file does not say it


def test_nothing_calls_the_reference_recipe_the_seeds():
    """The documents the recipe came from are "the reference recipe": the old possessive read as nonsense
    beside a feature about random seeds."""
    said = [f"{path.relative_to(ROOT)}:{n}" for path in project_files() if path.suffix in PROSE_SUFFIXES
            for n, line in enumerate(path.read_text().splitlines(), 1) if THE_SEEDS in line.lower()]
    assert said == []


# "seed" beside a word for the documents the recipe came from: a name that reads as "the seed documents"
SEED_AS_DOCUMENT = re.compile(r"seeds?[_ -](recipe|document|assignment|solution)", re.I)


def names_in(path) -> list[str]:
    """The names a Python file defines or uses: functions (tests included), classes, variables."""
    tree = ast.parse(path.read_text())
    return [node.name if not isinstance(node, ast.Name) else node.id for node in ast.walk(tree)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Name))]


def test_no_name_or_sentence_calls_the_recipe_a_seed():
    """Test names included: `test_a_named_seed_recipe_...` read as the recipe of the seed documents."""
    files = [path for path in project_files() if path.name != "test_words.py"]  # this file names the pattern
    said = [f"{path.relative_to(ROOT)}: {name}" for path in files if path.suffix == ".py"
            for name in names_in(path) if SEED_AS_DOCUMENT.search(name)]
    said += [f"{path.relative_to(ROOT)}: {m.group(0)}" for path in files
             if path.suffix in PROSE_SUFFIXES for m in SEED_AS_DOCUMENT.finditer(prose(path))]
    assert said == []
    assert SEED_AS_DOCUMENT.search("test_a_named_seed_recipe_runs") and not SEED_AS_DOCUMENT.search("seed_table")


def test_no_test_reads_the_workspace_params():
    """The tests read params.yaml as git's index holds it (conftest.PARAMS_YAML): a quick look that `dvc exp
    run` applied to the workspace changes no test's expectations."""
    from conftest import PARAMS_YAML

    index = subprocess.run(["git", "show", ":params.yaml"], cwd=ROOT, capture_output=True, text=True)
    assert index.returncode or PARAMS_YAML.read_text() == index.stdout
    reading = [f"{path.relative_to(ROOT)}:{n}" for path in sorted((ROOT / "tests").glob("*.py"))
               for n, line in enumerate(path.read_text().splitlines(), 1)
               if re.search(r"ROOT\s*/\s*[\"']params\.yaml", line)]
    assert reading == []


def test_every_file_and_module_the_prose_names_exists(tmp_path):
    assert unresolved(project_files()) == []
    stale = tmp_path / "stale.md"
    stale.write_text("see cifarpipe/lr_rules.py and `cifarpipe.lr_finder`; cifarpipe/core/ and "
                     "cifarpipe.core.params.stage_params are real; tests/test_plots_offline.py and "
                     "tests/test_noise.py::test_gone are not, tests/test_holm.py::test_holm_adjust_gives_statsmodels_"
                     "adjusted_p_values_and_rejections is\n")
    assert unresolved([stale]) == ["stale.md: cifarpipe/lr_rules.py", "stale.md: cifarpipe.lr_finder",
                                   "stale.md: tests/test_plots_offline.py", "stale.md: tests/test_noise.py::test_gone"]
