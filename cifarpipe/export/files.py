"""The trained network as ONNX and as a torch.export program, files that need neither this repository nor its
venv, checked against PyTorch (docs/use.md says what each holds and who can load it)."""
from __future__ import annotations

import numpy as np
import torch

from ..core.errors import PipelineError

ONNX, PROGRAM, META = "model.onnx", "model.pt2", "model.json"


def export_onnx(model: torch.nn.Module, example: torch.Tensor, path) -> None:
    """The eval-mode `model` as one ONNX file with a dynamic batch dimension."""
    batch = torch.export.Dim("batch", min=1)
    program = torch.onnx.export(model.eval(), (example,), dynamo=True, dynamic_shapes={"x": {0: batch}},
                                input_names=["images"], output_names=["logits"], verbose=False)
    program.save(str(path), external_data=False)


def export_program(model: torch.nn.Module, example: torch.Tensor, path) -> None:
    """The eval-mode `model` as a torch.export program with a dynamic batch dimension."""
    batch = torch.export.Dim("batch", min=1)
    program = torch.export.export(model.eval(), (example,), dynamic_shapes={"x": {0: batch}})
    torch.export.save(program, str(path))


def open_onnx(path):
    """An onnxruntime session of the ONNX file at `path`, on the CPU."""
    import onnxruntime

    return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def load_program(path) -> torch.nn.Module:
    """The network of a torch.export program (`.pt2`), without its Python class."""
    return torch.export.load(str(path)).module()


def onnx_logits(path, images: np.ndarray, batch_size: int) -> np.ndarray:
    """Logits of normalised float32 NCHW `images` by onnxruntime on the CPU."""
    session = open_onnx(path)
    name = session.get_inputs()[0].name
    return np.concatenate([session.run(None, {name: images[i:i + batch_size]})[0]
                           for i in range(0, len(images), batch_size)])


@torch.no_grad()
def torch_logits(model, images: np.ndarray, batch_size: int) -> np.ndarray:
    """Logits of normalised float32 NCHW `images` by a PyTorch module (a network, or a loaded program's)."""
    return np.concatenate([model(torch.from_numpy(images[i:i + batch_size])).numpy()
                           for i in range(0, len(images), batch_size)])


def agreement(reference: np.ndarray, logits: np.ndarray) -> dict:
    """How far `logits` are from `reference`: the largest absolute difference, the same relative to the
    largest reference logit (at least 1: float32 rounding grows with the logits' size), and the share of
    equal argmaxes."""
    diff = float(np.abs(reference - logits).max())
    return {"max_abs_logit_diff": diff, "max_rel_logit_diff": diff / max(1.0, float(np.abs(reference).max())),
            "argmax_agreement": float((reference.argmax(1) == logits.argmax(1)).mean())}


def refuse_if_different(checks: dict[str, dict], cfg) -> None:
    """Raise when an exported file's `agreement` with PyTorch is outside the export params' limits."""
    for name, check in checks.items():
        close = check["max_rel_logit_diff"] <= cfg.max_logit_diff
        if not close or check["argmax_agreement"] < cfg.min_agreement:
            raise PipelineError(
                f"the exported {name} model differs from PyTorch on the test set: logits by up to "
                f"{check['max_rel_logit_diff']:.3g} of the largest (export.max_logit_diff "
                f"{cfg.max_logit_diff}), "
                f"the class agrees on {check['argmax_agreement']:.2%} (export.min_agreement "
                f"{cfg.min_agreement:.2%}); nothing was written")
