"""Stage gradcam: GradCAM and GradCAM++ on misclassified (and a few correct) test images -> plots/gradcam/.

It explains the first seed's model (dvc.yaml passes it). One PNG per image: the image, then an overlay per
layer and method, for the predicted and the true class, at blocks whose maps are at least gradcam.min_size.

    python -m stages.gradcam --seed 0
"""
import numpy as np

from cifarpipe.compute.device import configure_torch, resolve_compute
from cifarpipe.core import paths
from cifarpipe.core.artifacts import atomic_dir
from cifarpipe.core.params import stage_params
from cifarpipe.core.paths import per_seed
from cifarpipe.core.stage import run_stage, seed_argument
from cifarpipe.data.dataset import load_splits
from cifarpipe.data.loader import test_images
from cifarpipe.figures.common import denormalize, save_figure
from cifarpipe.gradcam.cams import check_methods, choose_layers, explain, overlay
from cifarpipe.gradcam.figures import cam_grid
from cifarpipe.model.networks import load_trained


def main():
    params, seed = stage_params("gradcam"), seed_argument("gradcam")
    cfg = params.gradcam
    compute = configure_torch(resolve_compute(params.compute, precision="fp32"))
    model = load_trained(params.model, per_seed(paths.MODEL, seed), compute)
    layers = choose_layers(model, cfg.layers, cfg.min_size, cfg.deepest)  # refused here, before the data
    methods = check_methods(cfg.methods)
    predictions = np.load(per_seed(paths.PREDICTIONS, seed))
    labels, preds = predictions["labels"], predictions["preds"]
    chosen = [("wrong", i) for i in np.flatnonzero(preds != labels)[:cfg.images]]
    chosen += [("right", i) for i in np.flatnonzero(preds == labels)[:cfg.correct_images]]

    data, stats = load_splits(params.data, train=False)
    idx = np.array([i for _, i in chosen], dtype=np.int64)
    images = test_images(data, stats, compute, idx)
    shown = denormalize(images.cpu().numpy(), stats["mean"], stats["std"])
    classes = data["classes"]
    targets = {"predicted": preds, "true": labels}  # explain both: why this answer, and where the truth was
    heat = {(layer, method, which): explain(model, images, targets[which][idx], layer, method)
            for layer in layers for method in methods for which in targets}

    with atomic_dir(paths.GRADCAM_DIR) as tmp:  # the folder appears whole or not at all
        for n, ((kind, i), image) in enumerate(zip(chosen, shown)):
            rows = {f"{which}: {classes[targets[which][i]]}": {
                f"{layer} {method}": overlay(image, heat[(layer, method, which)][n])
                for layer in layers for method in methods} for which in targets}
            title = f"test #{i}: true {classes[labels[i]]}, predicted {classes[preds[i]]}"
            save_figure(cam_grid(image, rows, title), tmp / f"{kind}_{n:02d}_test{i:05d}.png")
    print(f"wrote {len(chosen)} GradCAM grids of seed {seed}'s model for layers {', '.join(layers)} to "
          f"{paths.GRADCAM_DIR}/")


if __name__ == "__main__":
    run_stage(main)
