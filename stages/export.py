"""Stage export: the first seed's model as ONNX and as a torch.export program, each checked against PyTorch
on the test set -> models/export/ (model.onnx, model.pt2, model.json), metrics/export.json.

It writes nothing when a file's logits or classes differ from PyTorch's by more than the export params allow.

    python -m stages.export --seed 0
"""
import json

import numpy as np
import torch

from cifarpipe.compute.device import Compute
from cifarpipe.core import paths
from cifarpipe.core.artifacts import atomic_dir, read_json, write_json
from cifarpipe.core.params import IMAGE_SIZE, stage_params
from cifarpipe.core.paths import per_seed
from cifarpipe.core.stage import run_stage, seed_argument
from cifarpipe.data.dataset import load_splits
from cifarpipe.data.loader import test_images
from cifarpipe.export.files import (
    META,
    ONNX,
    PROGRAM,
    agreement,
    export_onnx,
    export_program,
    load_program,
    onnx_logits,
    refuse_if_different,
    torch_logits,
)
from cifarpipe.model.networks import load_trained


def main():
    params, seed = stage_params("export"), seed_argument("export")
    cfg, batch = params.export, params.runtime.eval_batch_size
    cpu = Compute(torch.device("cpu"), "fp32")
    model = load_trained(params.model, per_seed(paths.MODEL, seed), cpu)
    data, stats = load_splits(params.data, train=False)
    images = test_images(data, stats, cpu, np.arange(len(data["y_test"]))).numpy()
    meta = {"model": params.model.model_dump(), "seed": seed, "image_size": IMAGE_SIZE, "mean": stats["mean"],
            "std": stats["std"], "classes": data["classes"], "tta_flip": params.evaluate.tta_flip,
            "temperature": read_json(per_seed(paths.CALIBRATION, seed))["temperature"],
            "input": "float32 NCHW, RGB scaled to 0..1, minus mean, over std",
            "output": "logits, one per class"}

    with atomic_dir(paths.EXPORT_DIR) as folder:  # the folder appears whole, checked, or not at all
        example = torch.from_numpy(images[:2])
        export_onnx(model, example, folder / ONNX)
        export_program(model, example, folder / PROGRAM)
        reference = torch_logits(model, images, batch)
        checks = {"onnx": agreement(reference, onnx_logits(folder / ONNX, images, batch)),
                  "pt2": agreement(reference, torch_logits(load_program(folder / PROGRAM), images, batch))}
        refuse_if_different(checks, cfg)
        (folder / META).write_text(json.dumps(meta, indent=2) + "\n")
    write_json(paths.EXPORT_JSON, {"images": len(images), **checks})
    found = "; ".join(f"{n} max |Δ logit| {c['max_abs_logit_diff']:.2e}, argmax agreement "
                      f"{c['argmax_agreement']:.2%}" for n, c in checks.items())
    print(f"exported seed {seed}'s model to {paths.EXPORT_DIR}/ ({ONNX}, {PROGRAM}, {META}); on "
          f"{len(images)} test images: {found}")


if __name__ == "__main__":
    run_stage(main)
