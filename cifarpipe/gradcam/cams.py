"""GradCAM and GradCAM++ at the blocks whose maps are large enough to mean something: the maps of every layer,
method and target class from one forward and one backward pass over a batch.

The formulas are those of the library `grad-cam` (pytorch_grad_cam 1.5.7), written out here because importing
it took 4.5 s of the stage's 5.3 s start (it brings torchvision and scikit-learn); tests/test_models.py checks
these maps against the library's."""
from __future__ import annotations

import cv2
import numpy as np
import torch

from ..core.errors import ParamsError
from ..core.params import choose
from ..model.networks import block_output_shapes


def gradcam_weights(activations: np.ndarray, grads: np.ndarray) -> np.ndarray:
    """GradCAM's channel weights (N, C): the gradients' mean over the map."""
    return np.mean(grads, axis=(2, 3))


def gradcam_plus_plus_weights(activations: np.ndarray, grads: np.ndarray) -> np.ndarray:
    """GradCAM++'s channel weights (N, C): equation 19 of Chattopadhay et al. 2018 (arXiv 1710.11063), the
    positive gradients weighted by alpha, which is zero where the gradient is."""
    grads_power_2 = grads ** 2
    grads_power_3 = grads_power_2 * grads
    sum_activations = np.sum(activations, axis=(2, 3))[:, :, None, None]
    aij = grads_power_2 / (2 * grads_power_2 + sum_activations * grads_power_3 + 0.000001)
    aij = np.where(grads != 0, aij, 0)
    return np.sum(np.maximum(grads, 0) * aij, axis=(2, 3))


METHODS = {"gradcam": gradcam_weights, "gradcam++": gradcam_plus_plus_weights}  # gradcam.methods


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


def maps_and_gradients(model, images: torch.Tensor, classes: np.ndarray,
                       layers: list[str]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{layer: (its output maps, the gradient of each image's logit of `classes[i]` with respect to them)},
    float32 numpy (N, C, h, w), from one forward and one backward pass of `images` (fp32, eval mode).

    Each image's logit depends on that image alone in eval mode, so the sum of the chosen logits has each
    image's own gradient; autograd.grad computes no parameter gradient."""
    model.eval()
    kept = {}
    hooks = [getattr(model, name).register_forward_hook(
        lambda module, inputs, output, name=name: kept.__setitem__(name, output)) for name in layers]
    try:
        with torch.enable_grad():
            logits = model(images.float())
            chosen = logits.gather(1, torch.as_tensor(classes, device=logits.device).view(-1, 1)).sum()
            grads = torch.autograd.grad(chosen, [kept[name] for name in layers])
    finally:
        for hook in hooks:
            hook.remove()
    return {name: (kept[name].detach().cpu().numpy(), grad.cpu().numpy())
            for name, grad in zip(layers, grads)}


def scaled(cams: np.ndarray, size: tuple[int, int] | None = None) -> np.ndarray:
    """Each map shifted to start at 0 and divided by its maximum, then resized to `size` (W, H) if given
    (cv2.resize, bilinear), in float32: the library's scale_cam_image."""
    done = []
    for image in cams:
        image = image - np.min(image)
        image = image / (1e-7 + np.max(image))
        done.append(image if size is None else cv2.resize(np.float32(image), size))
    return np.float32(done)


def cam_images(activations: np.ndarray, grads: np.ndarray, method: str, size: tuple[int, int]) -> np.ndarray:
    """(N, H, W) heat maps in 0..1 at `size` (W, H): the positive part of the maps' sum weighted by `method`,
    scaled, resized and scaled again, as the library does for one layer."""
    weights = choose(METHODS, "gradcam.methods", method)(activations, grads)
    cam = np.maximum((weights[:, :, None, None] * activations).sum(axis=1), 0)
    return scaled(np.maximum(scaled(cam, size), 0))


def explain(model, images: torch.Tensor, targets: dict[str, np.ndarray], layers: list[str],
            methods: list[str]) -> dict[tuple[str, str, str], np.ndarray]:
    """{(layer, method, target): (N, H, W) heat maps in 0..1 of why `model` would predict `targets[target][i]`
    for `images[i]`}: the images once per target in one batch, one forward and one backward pass in all."""
    batch = torch.cat([images] * len(targets))
    found = maps_and_gradients(model, batch, np.concatenate([targets[t] for t in targets]), layers)
    size, n = (images.shape[-1], images.shape[-2]), len(images)
    heat = {}
    for layer, (activations, grads) in found.items():
        for method in methods:
            cams = cam_images(activations, grads, method, size)
            heat.update({(layer, method, t): cams[k * n:(k + 1) * n] for k, t in enumerate(targets)})
    return heat


def overlay(image01: np.ndarray, heat: np.ndarray) -> np.ndarray:
    """The heat map over a (H, W, 3) 0..1 image, as uint8 RGB: the library's show_cam_on_image (JET colours,
    half and half)."""
    heatmap = cv2.cvtColor(cv2.applyColorMap(np.uint8(255 * heat), cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)
    cam = 0.5 * (np.float32(heatmap) / 255) + 0.5 * image01.astype(np.float32)
    return np.uint8(255 * (cam / np.max(cam)))
