"""The whole classifier (cifarpipe/export/classifier.py) in an ONNX file and a torch.export program, files
that need neither this repository nor its venv and describe themselves, checked against PyTorch (docs/use.md
says what each holds and who can load it). torch is imported only where a function needs it: reading an ONNX
file with onnxruntime must not pay for it (650 MB of memory for torch's CUDA build)."""
from __future__ import annotations

import json
import math

import numpy as np

from ..core.errors import PipelineError
from ..core.params import IMAGE_SIZE
from .images import BACKGROUND, RESIZE

ONNX, PROGRAM, META = "model.onnx", "model.pt2", "model.json"
INPUT, OUTPUTS = "images", ["probabilities", "logits"]


def describe(model, seed: int, classes: list[str], stats: dict, *, tta_flip: bool,
             temperature: float) -> dict:
    """What the exported files say about themselves (model.json, the ONNX file's metadata_props, the program's
    extra file), but the opset, which the ONNX export adds."""
    import onnxruntime
    import torch

    return {"model": model.model_dump(), "seed": seed, "classes": list(classes), "image_size": IMAGE_SIZE,
            "input": f"uint8 RGB images (N, {IMAGE_SIZE}, {IMAGE_SIZE}, 3), named {INPUT!r}",
            "outputs": "probabilities (N, classes): softmax(logits / temperature); logits (N, classes), "
                       "averaged with the mirror image's when tta_flip",
            "resize": RESIZE, "background": f"transparent pixels composited on RGB {BACKGROUND}",
            "mean": list(stats["mean"]), "std": list(stats["std"]),
            "normalisation": "in the graph: pixel / 255, minus mean, over std (per RGB channel)",
            "tta_flip": tta_flip, "temperature": float(temperature),
            "torch": torch.__version__, "onnxruntime": onnxruntime.__version__}


def as_metadata_props(meta: dict) -> dict[str, str]:
    """`meta` as ONNX metadata_props: strings as they are, anything else as JSON."""
    return {key: value if isinstance(value, str) else json.dumps(value) for key, value in meta.items()}


def from_metadata_props(props: dict[str, str]) -> dict:
    """The dict `as_metadata_props` wrote (what is not JSON is a string)."""
    def parse(value: str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return {key: parse(value) for key, value in props.items()}


def dynamic_batch() -> dict:
    import torch

    return {INPUT: {0: torch.export.Dim("batch", min=1)}}


def capture(model, example):
    """The eval-mode Classifier captured once by torch.export, with a dynamic batch dimension: the program
    that both files are made from."""
    import torch

    return torch.export.export(model.eval(), (example,), dynamic_shapes=dynamic_batch())


def export_onnx(program, path, meta: dict) -> dict:
    """The captured program as one ONNX file (its batch dimension dynamic) with `meta`, plus its opset, in
    its metadata_props; returns that metadata."""
    import torch

    onnx_program = torch.onnx.export(program, dynamo=True, input_names=[INPUT], output_names=OUTPUTS,
                                     verbose=False)
    meta = {**meta, "opset": onnx_program.model.opset_imports[""]}
    onnx_program.model.metadata_props.update(as_metadata_props(meta))
    onnx_program.save(str(path), external_data=False)
    return meta


def export_program(program, path, meta: dict) -> None:
    """The captured program as a torch.export file, `meta` inside as the extra file model.json."""
    import torch

    torch.export.save(program, str(path), extra_files={META: json.dumps(meta)})


def images_to_check(available: int, min_agreement: float) -> int:
    """How many test images a file is checked on: the fewest on which its class agreement can show
    export.min_agreement (1,000 for 99.9%, where one image in a thousand may differ and two may not), at most
    those there are. An error of the export itself (the weights, the normalisation, the mirror, the
    temperature) shows on every image; a tie that rounding tips shows once in so many."""
    if min_agreement >= 1:
        return available
    return min(available, math.ceil(round(1 / (1 - min_agreement), 6)))


def open_onnx(path, threads: int | None = None):
    """An onnxruntime session of the ONNX file at `path`, on the CPU (`threads` for its operators, default
    onnxruntime's: one per core), without the memory arena: it kept twice the peak (1.1 GB instead of 0.66 GB
    for a batch of 256 on the recipe's network), at no measured speed."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.enable_cpu_mem_arena = False
    options.intra_op_num_threads = threads or 0
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def onnx_meta(session) -> dict:
    """What an exported ONNX file says about itself (its metadata_props), from its session."""
    return from_metadata_props(session.get_modelmeta().custom_metadata_map)


def load_program(path):
    """(the classifier of a torch.export program (`.pt2`), a torch module without its Python class; the
    model.json inside)."""
    import torch

    extra = {META: ""}
    module = torch.export.load(str(path), extra_files=extra).module()
    return module, json.loads(extra[META]) if extra[META] else {}


def onnx_outputs(session, images: np.ndarray, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities, logits) of uint8 NHWC `images` by an onnxruntime session, `batch_size` at a time."""
    runs = [session.run(OUTPUTS, {INPUT: images[i:i + batch_size]})
            for i in range(0, len(images), batch_size)]
    return tuple(np.concatenate(parts) for parts in zip(*runs))


def agreement(reference: tuple[np.ndarray, np.ndarray], outputs: tuple[np.ndarray, np.ndarray]) -> dict:
    """How far (probabilities, logits) `outputs` are from `reference`: the largest absolute difference of the
    probabilities and of the logits, the latter relative to the largest reference logit too (at least 1:
    float32 rounding grows with the logits' size), and the share of equal classes, on the first
    len(outputs) images of `reference`."""
    (probs, logits) = outputs
    ref_probs, ref_logits = (part[:len(probs)] for part in reference)
    diff = float(np.abs(ref_logits - logits).max())
    return {"images": len(probs), "max_abs_prob_diff": float(np.abs(ref_probs - probs).max()),
            "max_abs_logit_diff": diff,
            "max_rel_logit_diff": diff / max(1.0, float(np.abs(ref_logits).max())),
            "argmax_agreement": float((ref_probs.argmax(1) == probs.argmax(1)).mean())}


def refuse_if_different(checks: dict[str, dict], cfg) -> None:
    """Raise when an exported file's `agreement` with PyTorch is outside the export params' limits."""
    for name, check in checks.items():
        close = (check["max_rel_logit_diff"] <= cfg.max_logit_diff
                 and check["max_abs_prob_diff"] <= cfg.max_prob_diff)
        if not close or check["argmax_agreement"] < cfg.min_agreement:
            raise PipelineError(
                f"the exported {name} model differs from PyTorch on the test set: logits by up to "
                f"{check['max_rel_logit_diff']:.3g} of the largest (export.max_logit_diff "
                f"{cfg.max_logit_diff}), probabilities by up to {check['max_abs_prob_diff']:.3g} "
                f"(export.max_prob_diff {cfg.max_prob_diff}), the class agrees on "
                f"{check['argmax_agreement']:.2%} (export.min_agreement {cfg.min_agreement:.2%}); "
                "nothing was written")
