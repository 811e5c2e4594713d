"""Stage export: the first seed's model as ONNX and as a torch.export program, each checked against PyTorch
on the test set -> models/export/ (model.onnx, model.pt2, model.json), metrics/export.json.

It fails, writing nothing, when an exported file's logits differ from PyTorch eval's by more than
export.max_logit_diff (relative to the largest logit, at least 1), or its predicted classes agree on fewer
than export.min_agreement of the test images.
Everything runs on the CPU in fp32: the files are for machines without this venv or a GPU.

    python -m stages.export --seed 0
"""
import json

import numpy as np
import torch

from cifarpipe.compute.device import Compute
from cifarpipe.core import paths
from cifarpipe.core.artifacts import atomic_dir, read_json, write_json
from cifarpipe.core.errors import PipelineError
from cifarpipe.core.params import IMAGE_SIZE, runtime_settings, stage_params
from cifarpipe.core.paths import per_seed
from cifarpipe.core.stage import run_stage, seed_argument
from cifarpipe.data.dataset import load_splits
from cifarpipe.data.loader import test_images
from cifarpipe.export.files import (META, ONNX, PROGRAM, agreement, export_onnx, export_program, onnx_logits,
                                    torch_logits)
from cifarpipe.model.networks import load_trained


def main():
    params, seed = stage_params("export"), seed_argument("export")
    cfg, batch = params["export"], runtime_settings()["eval_batch_size"]
    cpu = Compute(torch.device("cpu"), "fp32")
    model = load_trained(params["model"], per_seed(paths.MODEL, seed), cpu)
    data, stats = load_splits(params["data"], train=False)
    images = test_images(data, stats, cpu, np.arange(len(data["y_test"]))).numpy()
    meta = {"model": dict(params["model"]), "seed": seed, "image_size": IMAGE_SIZE, "mean": stats["mean"],
            "std": stats["std"], "classes": data["classes"], "tta_flip": params["evaluate"]["tta_flip"],
            "temperature": read_json(per_seed(paths.CALIBRATION, seed))["temperature"],
            "input": "float32 NCHW, RGB scaled to 0..1, minus mean, over std",
            "output": "logits, one per class"}

    with atomic_dir(paths.EXPORT_DIR) as folder:  # the folder appears whole, checked, or not at all
        example = torch.from_numpy(images[:2])
        export_onnx(model, example, folder / ONNX)
        export_program(model, example, folder / PROGRAM)
        reference = torch_logits(model, images, batch)
        checks = {"onnx": agreement(reference, onnx_logits(folder / ONNX, images, batch)),
                  "pt2": agreement(reference, torch_logits(torch.export.load(str(folder / PROGRAM)).module(),
                                                           images, batch))}
        for name, check in checks.items():
            close = check["max_rel_logit_diff"] <= cfg["max_logit_diff"]
            if not close or check["argmax_agreement"] < cfg["min_agreement"]:
                raise PipelineError(
                    f"the exported {name} model differs from PyTorch on the test set: logits by up to "
                    f"{check['max_rel_logit_diff']:.3g} of the largest (export.max_logit_diff "
                    f"{cfg['max_logit_diff']}), the class agrees on {check['argmax_agreement']:.2%} "
                    f"(export.min_agreement {cfg['min_agreement']:.2%}); nothing was written")
        (folder / META).write_text(json.dumps(meta, indent=2) + "\n")
    write_json(paths.EXPORT_JSON, {"images": len(images), **checks})
    found = "; ".join(f"{n} max |Δ logit| {c['max_abs_logit_diff']:.2e}, argmax agreement "
                      f"{c['argmax_agreement']:.2%}" for n, c in checks.items())
    print(f"exported seed {seed}'s model to {paths.EXPORT_DIR}/ ({ONNX}, {PROGRAM}, {META}); on "
          f"{len(images)} test images: {found}")


if __name__ == "__main__":
    run_stage(main)
