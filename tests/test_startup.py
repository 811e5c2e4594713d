"""A stage starts with the imports it uses and no other: each stage script imported in a fresh interpreter
holds only the heavy modules on its allow-list (torch alone costs about 2 s; the CAM library, gradcam's, 4.5)."""
import json
import subprocess
import sys

import pytest
import yaml

from conftest import ROOT

# the third-party modules whose import costs a stage a noticeable part of a second or more
HEAVY = ["torch", "torchvision", "matplotlib", "pandas", "scipy", "sklearn", "sympy", "cv2", "onnx",
         "onnxruntime", "onnxscript", "pytorch_grad_cam", "dvclive", "torchmetrics", "wand"]
DVCLIVE = {"dvclive", "pandas"}  # dvclive imports pandas
# what each stage uses: a figure is matplotlib; dvclive logs; scipy's softmax and statistics; cv2 the
# corruptions and GradCAM's colours; the CAM library (grad-cam: it brings torchvision, scikit-learn, pandas and
# sympy) the gradcam stage. The export stage imports onnx, onnxruntime and onnxscript inside its functions.
CAM = {"pytorch_grad_cam", "torchvision", "sklearn", "pandas", "scipy", "sympy"}
ALLOWED = {
    "download": set(), "stats": set(), "lr_find": set(), "lr_pick": {"matplotlib"},
    "preview": {"torch", "matplotlib"}, "train": {"torch"} | DVCLIVE,
    "evaluate": {"torch", "matplotlib", "scipy"} | DVCLIVE, "gradcam": {"torch", "matplotlib", "cv2"} | CAM,
    "corrupt": {"scipy", "cv2"}, "robustness": {"torch", "matplotlib", "scipy"}, "export": {"torch"},
    "aggregate": {"matplotlib", "pandas", "scipy"},
}
SHOW = ("import json, sys; import stages.{stage}; "
        "print(json.dumps([m for m in {heavy} if m in sys.modules]))")


def test_every_stage_of_dvc_yaml_has_an_allow_list():
    assert set(ALLOWED) == set(yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"])


@pytest.mark.parametrize("stage", list(ALLOWED))
def test_a_stage_imports_no_heavy_module_it_does_not_use(stage):
    proc = subprocess.run([sys.executable, "-c", SHOW.format(stage=stage, heavy=HEAVY)], cwd=ROOT,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    imported = set(json.loads(proc.stdout.strip().splitlines()[-1]))
    assert not imported - ALLOWED[stage], (f"stages.{stage} imports {sorted(imported - ALLOWED[stage])}, "
                                           "which it does not use: import it where it is used")


def test_the_check_sees_a_heavy_import():
    """The same check on a script that imports the CAM library fails: the walk above can fail."""
    code = SHOW.format(stage="stats", heavy=HEAVY).replace("import stages.stats", "import pytorch_grad_cam")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    imported = set(json.loads(proc.stdout.strip().splitlines()[-1]))
    assert {"pytorch_grad_cam", "torch", "torchvision"} <= imported
    assert imported - ALLOWED["stats"]
