"""GradCAM and GradCAM++ (library `grad-cam`) at the blocks whose maps are large enough to mean something."""
from __future__ import annotations

import numpy as np
import torch
from pytorch_grad_cam import GradCAM, GradCAMPlusPlus
from pytorch_grad_cam.utils.image import show_cam_on_image
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

from ..core.errors import ParamsError
from ..core.params import choose
from ..model.networks import block_output_shapes

METHODS = {"gradcam": GradCAM, "gradcam++": GradCAMPlusPlus}  # gradcam.methods


def check_methods(methods: list[str]) -> list[str]:
    """gradcam.methods, each checked against METHODS."""
    for method in methods:
        choose(METHODS, "gradcam.methods", method)
    return list(methods)


def choose_layers(model, layers, min_size: int, deepest: int) -> list[str]:
    """The blocks to explain: the `deepest` deepest with maps >= min_size (layers: auto), or the named
    ones."""
    shapes = block_output_shapes(model)
    large = [name for name, (_, h, w) in shapes.items() if min(h, w) >= min_size]
    if layers == "auto":
        return large[-deepest:]
    for name in layers:
        if name not in shapes:
            raise ParamsError(f"gradcam.layers names {name!r}, which {type(model).__name__} lacks; "
                             f"its blocks are {', '.join(shapes)}")
        if name not in large:
            raise ParamsError(f"gradcam.layers names {name!r}, whose maps are "
                             f"{shapes[name][1]}x{shapes[name][2]}, smaller than gradcam.min_size = "
                             f"{min_size}: choose from {', '.join(large)}")
    return list(layers)


def explain(model, images: torch.Tensor, classes: list[int], layer: str, method: str) -> np.ndarray:
    """(N, H, W) heat maps in 0..1 of why `model` would predict `classes[i]` for `images[i]`."""
    model.eval()
    with choose(METHODS, "gradcam.methods", method)(model=model,
                                                    target_layers=[getattr(model, layer)]) as cam:
        return cam(input_tensor=images.float(), targets=[ClassifierOutputTarget(int(c)) for c in classes])


def overlay(image01: np.ndarray, heat: np.ndarray) -> np.ndarray:
    """The heat map over a (H, W, 3) 0..1 image, as uint8 RGB."""
    return show_cam_on_image(image01.astype(np.float32), heat, use_rgb=True)
