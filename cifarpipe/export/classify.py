"""Classify image files with an exported model (`cifarpipe predict`), as the evaluate stage scores: each file
decoded one way (cifarpipe/export/images.py), then the whole classifier of the file: normalised, averaged with
the mirror image when tta_flip is on, the softmax over the fitted temperature."""
from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.errors import PipelineError
from .files import load_program, onnx_meta, onnx_outputs, open_onnx
from .images import Failure, Unreadable, decode, image_files

MODEL_SUFFIXES = (".onnx", ".pt2", ".pt")


@dataclass
class Prediction:
    """An image's `top` classes, the most probable first: [(class, probability), ...]."""
    path: Path
    top: list[tuple[str, float]]


@dataclass
class Loaded:
    """An exported model ready to run: uint8 NHWC images -> (probabilities, logits), and what it says about
    itself (model.json's keys)."""
    run: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
    meta: dict


def read_meta(path: Path) -> dict:
    """A model.json (needed only beside PyTorch weights: the exported files carry their own)."""
    if not Path(path).exists():
        raise PipelineError(f"{path} not found: it is written by the export stage beside the exported model. "
                            "Run `dvc repro export` (or `dvc pull`), or name it with --meta")
    return json.loads(Path(path).read_text())


def load_model(model_path: Path, meta_path: Path | None = None, threads: int | None = None) -> Loaded:
    """The model file `model_path` names: model.onnx (onnxruntime, with `threads`), model.pt2 (torch.export)
    or a model.pt state dict, rebuilt with the model.json at `meta_path` (default: the export folder's)."""
    model_path = Path(model_path)
    if model_path.suffix not in MODEL_SUFFIXES:
        raise PipelineError(f"{model_path}: --model names a model.onnx, model.pt2 or model.pt file")
    if not model_path.exists():
        raise PipelineError(f"{model_path} not found: run `dvc repro export`, `dvc pull`, or "
                            "`dvc artifacts get <repo> cifar10-resnet-export -o models/export` first")
    if meta_path is not None and model_path.suffix != ".pt":
        raise PipelineError(f"--meta is for a model.pt: {model_path.name} carries what it needs")
    if model_path.suffix == ".onnx":
        session = open_onnx(model_path, threads)
        return Loaded(lambda images: onnx_outputs(session, images, len(images)), onnx_meta(session))
    from .classifier import classifier, torch_outputs  # torch: only for the files that need it

    if model_path.suffix == ".pt2":
        module, meta = load_program(model_path)
    else:
        from ..core import paths
        from ..core.params import Model
        from ..model.networks import load_trained

        meta = read_meta(meta_path or paths.EXPORT_META)
        module = classifier(load_trained(Model(**meta["model"]), model_path), meta)
    return Loaded(lambda images: torch_outputs(module, images, len(images)), meta)


def batches(files: Iterable[Path | Failure],
            batch_size: int) -> Iterator[tuple[list[Path], np.ndarray] | Failure]:
    """Decoded images (paths, uint8 (B, 32, 32, 3)) of at most `batch_size` files, and a Failure for each
    input that gives none, in the order of `files`: one batch of pixels in memory at a time."""
    paths, images = [], []
    for file in files:
        if isinstance(file, Failure):
            yield file
            continue
        try:
            images.append(decode(file))
            paths.append(file)
        except Unreadable as err:
            yield Failure(file, str(err))
        if len(images) == batch_size:
            yield paths, np.stack(images)
            paths, images = [], []
    if images:
        yield paths, np.stack(images)


def predict(model: Loaded, inputs: Iterable[Path], *, top: int = 3, batch_size: int = 256,
            recursive: bool = False) -> Iterator[Prediction | Failure]:
    """A Prediction for each image the `inputs` (files and folders) hold, and a Failure for each one that
    is not, as they come."""
    classes = model.meta["classes"]
    for batch in batches(image_files(inputs, recursive), batch_size):
        if isinstance(batch, Failure):
            yield batch
            continue
        paths, images = batch
        probabilities, _ = model.run(images)
        for path, p in zip(paths, probabilities):
            yield Prediction(path, [(classes[i], round(float(p[i]), 6)) for i in np.argsort(-p)[:top]])
