"""Classify image files with an exported model (`cifarpipe predict`): the same preprocessing as training.

Each image is read with PIL, converted to RGB and resized to 32x32 pixels (IMAGE_SIZE) with PIL's bicubic
filter, the whole image, uncropped (a non-square image is squashed to a square); then normalised with the
training set's channel mean and std from model.json. With `tta_flip` (model.json, as evaluate.tta_flip) the
logits are the mean over the image and its mirror, as the evaluate stage scores. Probabilities are the
softmax of the logits divided by the temperature, when model.json holds one (else 1: uncalibrated).

The network runs from whichever file is named: model.onnx through onnxruntime, model.pt2 (torch.export) or a
state dict (model.pt, rebuilt from model.json's model.name and model.width) through PyTorch, all on the CPU.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..core.errors import PipelineError
from ..core.params import IMAGE_SIZE
from .files import META


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
    """uint8 NHWC -> float32 NCHW, scaled to 0..1, minus the channel mean, over the channel std."""
    x = images.astype(np.float32).transpose(0, 3, 1, 2) / 255
    mean, std = (np.asarray(meta[k], np.float32).reshape(1, 3, 1, 1) for k in ("mean", "std"))
    return np.ascontiguousarray((x - mean) / std)


def network(model_path: Path, meta: dict):
    """A function from normalised float32 NCHW images to logits, for the file `model_path` names."""
    suffix = Path(model_path).suffix
    if suffix == ".onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        return lambda x: session.run(None, {name: x})[0]
    import torch

    if suffix == ".pt2":
        module = torch.export.load(str(model_path)).module()
    elif suffix == ".pt":
        from ..model.networks import build_model

        module = build_model(meta["model"])
        module.load_state_dict(torch.load(model_path, map_location="cpu", weights_only=True))
        module.eval()
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
