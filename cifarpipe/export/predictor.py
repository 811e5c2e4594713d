"""Classify image files with an exported model (`cifarpipe predict`), preprocessed as the evaluate stage
scores: RGB, squashed to 32x32 (bicubic), normalised, averaged with the mirror image when tta_flip is on."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..core.errors import PipelineError
from ..core.params import IMAGE_SIZE
from .files import META, load_program, open_onnx


def read_meta(model_path: Path, meta_path: Path | None = None) -> dict:
    """model.json: beside the model file, or where `meta_path` says."""
    meta_path = meta_path or Path(model_path).with_name(META)
    if not meta_path.exists():
        raise PipelineError(f"{meta_path} not found: it is written by the export stage beside the exported "
                            "model. Run `dvc repro export` (or `dvc pull`), or name it with --meta")
    return json.loads(meta_path.read_text())


def read_images(paths: list[Path]) -> np.ndarray:
    """(N, 32, 32, 3) uint8 RGB images from PNG or JPEG files of any size."""
    from PIL import Image, UnidentifiedImageError

    images = []
    for path in paths:
        try:
            with Image.open(path) as image:
                images.append(np.asarray(image.convert("RGB").resize((IMAGE_SIZE, IMAGE_SIZE),
                                                                     Image.Resampling.BICUBIC)))
        except FileNotFoundError:
            raise PipelineError(f"{path}: no such file") from None
        except (UnidentifiedImageError, OSError) as err:
            raise PipelineError(f"{path} is not an image PIL can read ({err}): give PNG or JPEG "
                                "files") from None
    return np.stack(images)


def normalise(images: np.ndarray, meta: dict) -> np.ndarray:
    """uint8 NHWC -> the network's float32 NCHW input, by the pipeline's one normalisation."""
    import torch

    from ..data.normalize import Normalize

    x = torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))
    return Normalize(meta["mean"], meta["std"])(x).numpy()


def network(model_path: Path, meta: dict):
    """A function from normalised float32 NCHW images to logits, for the file `model_path` names."""
    suffix = Path(model_path).suffix
    if suffix == ".onnx":
        session = open_onnx(model_path)
        name = session.get_inputs()[0].name
        return lambda x: session.run(None, {name: x})[0]
    import torch

    if suffix == ".pt2":
        module = load_program(model_path)
    elif suffix == ".pt":
        from ..core.params import Model
        from ..model.networks import load_trained

        module = load_trained(Model(**meta["model"]), model_path)
    else:
        raise PipelineError(f"{model_path}: --model names a model.onnx, model.pt2 or model.pt file")

    def logits(x):
        with torch.no_grad():
            return module(torch.from_numpy(x)).numpy()
    return logits


def predict(model_path: Path, image_paths: list[Path], top: int = 3,
            meta_path: Path | None = None) -> list[dict]:
    """[{"image", "top": [{"class", "probability"}, ...]}] for each image, the `top` most probable classes
    first."""
    if not Path(model_path).exists():
        raise PipelineError(f"{model_path} not found: run `dvc repro export`, `dvc pull`, or "
                            "`dvc artifacts get <repo> cifar10-resnet-export -o models/export` first")
    meta = read_meta(model_path, meta_path)
    run, x = network(model_path, meta), normalise(read_images(image_paths), meta)
    logits = run(x)
    if meta.get("tta_flip"):
        logits = (logits + run(np.ascontiguousarray(x[..., ::-1]))) / 2
    scaled = logits / (meta.get("temperature") or 1.0)
    probs = np.exp(scaled - scaled.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    return [{"image": str(path), "top": [{"class": meta["classes"][i], "probability": round(float(p[i]), 6)}
                                         for i in np.argsort(-p)[:top]]}
            for path, p in zip(image_paths, probs)]
