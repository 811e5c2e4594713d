"""The trained network in two files that need neither this repository nor its venv, checked against PyTorch.

- ONNX through torch's dynamo exporter (`torch.onnx.export(..., dynamo=True)`), a dynamic batch dimension and
  the weights inside the one file (`external_data=False`), so DVC tracks one output; run by onnxruntime
  anywhere.
- a `torch.export` program (`.pt2`), exported in eval mode with a dynamic batch:
  `torch.export.load(path).module()`
  gives back a callable network without its Python class.
- model.json beside them: what a predictor needs besides the weights (the network's name and width, the
  normalisation from data/stats.json, the class names, the image size, whether to average over the mirror
  image, the temperature the evaluate stage fitted, which calibrates the probabilities).

`check` runs both over the test set and compares them with PyTorch eval on the same images: the largest logit
difference and how often the predicted class agrees.
"""
from __future__ import annotations

import numpy as np
import torch

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


def onnx_logits(path, images: np.ndarray, batch_size: int) -> np.ndarray:
    """Logits of normalised float32 NCHW `images` by onnxruntime on the CPU."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
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
