"""The package reads in pieces a newcomer can hold: no function over 60 lines, no signature over 8 parameters,
and no module that changes the process's warning filters when it is imported."""
import ast
import subprocess
import sys

import pytest

from conftest import ROOT

MAX_LINES, MAX_PARAMS = 60, 8


def functions(root):
    for path in sorted((root / "cifarpipe").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                yield path.relative_to(root).as_posix(), node


def parameters(node) -> int:
    a = node.args
    names = [*a.posonlyargs, *a.args, *a.kwonlyargs, *filter(None, [a.vararg, a.kwarg])]
    return len([n for n in names if n.arg not in ("self", "cls")])


def too_big(root) -> list[str]:
    return [f"{path}:{node.lineno} {node.name}: {node.end_lineno - node.lineno + 1} lines, "
            f"{parameters(node)} parameters" for path, node in functions(root)
            if node.end_lineno - node.lineno + 1 > MAX_LINES or parameters(node) > MAX_PARAMS]


def test_no_function_is_over_60_lines_or_8_parameters():
    assert too_big(ROOT) == []


def test_the_shape_check_fails_on_a_long_function_and_a_long_signature(tmp_path):
    (tmp_path / "cifarpipe").mkdir()
    body = "\n".join(f"    x{i} = {i}" for i in range(60))
    (tmp_path / "cifarpipe/m.py").write_text(f"def long():\n{body}\n\n\n"
                                             "def wide(self, a, b, c, d, e, f, g, h, *, i=1):\n    pass\n\n\n"
                                             "class C:\n    def fine(self, a, b, c, d, e, f, g, h):\n        pass\n")
    assert too_big(tmp_path) == ["cifarpipe/m.py:1 long: 61 lines, 0 parameters",
                                 "cifarpipe/m.py:64 wide: 2 lines, 9 parameters"]


@pytest.mark.parametrize("module", ["cifarpipe.train.loop", "cifarpipe.train.prepare", "cifarpipe.evaluate.scoring",
                                    "cifarpipe.lr.range_test", "cifarpipe.gradcam.cams", "cifarpipe.aggregate.noise"])
def test_importing_a_module_leaves_the_warning_filters_as_they_were(module):
    """Our code scopes its filters (warnings.catch_warnings) to the call they apply to; the libraries are imported
    first, as some of them (pytorch_grad_cam, through scipy and sympy) add filters of their own."""
    code = ("import warnings, torch, scipy.stats, pytorch_grad_cam, torch_lr_finder; before = list(warnings.filters)"
            "; import " + module + "; print(warnings.filters == before)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "True", proc.stderr
