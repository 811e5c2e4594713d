"""Stage export: the first seed's model as a whole classifier (uint8 images in; normalisation, mirror average
and temperature inside; probabilities and logits out), as ONNX and torch.export -> models/export/ and
metrics/export.json. It writes nothing when a file's probabilities, logits or classes differ from PyTorch's
by more than the export params allow, on as many test images as export.min_agreement needs.

    python -m stages.export --seed 0"""
import json

import torch

from cifarpipe.core import paths
from cifarpipe.core.artifacts import atomic_dir, read_json, write_json
from cifarpipe.core.params import stage_params
from cifarpipe.core.paths import per_seed
from cifarpipe.core.stage import run_stage, seed_argument
from cifarpipe.data.dataset import load_splits
from cifarpipe.export.classifier import classifier, fastest, torch_outputs
from cifarpipe.export.files import (
    META,
    ONNX,
    PROGRAM,
    agreement,
    capture,
    describe,
    export_onnx,
    export_program,
    images_to_check,
    load_program,
    onnx_outputs,
    open_onnx,
    refuse_if_different,
)
from cifarpipe.model.networks import load_trained


def main():
    params, seed = stage_params("export"), seed_argument("export")
    cfg, batch = params.export, params.runtime.eval_batch_size
    data, stats = load_splits(params.data, train=False)
    images = data["x_test"]  # uint8 (N, 32, 32, 3), as a user's decoded files are
    meta = describe(params.model, seed, data["classes"], stats, tta_flip=params.evaluate.tta_flip,
                    temperature=read_json(per_seed(paths.CALIBRATION, seed))["temperature"])
    model = classifier(load_trained(params.model, per_seed(paths.MODEL, seed)), meta)

    with atomic_dir(paths.EXPORT_DIR) as folder:  # the folder appears whole, checked, or not at all
        program = capture(model, torch.from_numpy(images[:2]))  # one capture serves both files
        meta = export_onnx(program, folder / ONNX, meta)
        export_program(program, folder / PROGRAM, meta)
        # PyTorch's outputs on as many test images as the agreement needs (what `cifarpipe predict` runs on
        # a model.pt, at the forward pass's speed); onnxruntime's kernels round otherwise, so it is checked
        # on all of them; the program runs PyTorch's own kernels on the same graph, so what could go wrong in
        # it (saving, loading) shows on any image: one batch
        checked = images[:images_to_check(len(images), cfg.min_agreement)]
        reference = torch_outputs(fastest(model), checked, batch)
        program, _ = load_program(folder / PROGRAM)
        checks = {"onnx": agreement(reference, onnx_outputs(open_onnx(folder / ONNX), checked, batch)),
                  "pt2": agreement(reference, torch_outputs(fastest(program), checked[:batch], batch))}
        refuse_if_different(checks, cfg)
        (folder / META).write_text(json.dumps(meta, indent=2) + "\n")  # the folder itself is atomic
    write_json(paths.EXPORT_JSON, {"images": len(images), **checks})
    found = "; ".join(f"{n} on {c['images']} images: max |Δ probability| {c['max_abs_prob_diff']:.2e}, "
                      f"|Δ logit| {c['max_abs_logit_diff']:.2e}, class agreement {c['argmax_agreement']:.2%}"
                      for n, c in checks.items())
    print(f"exported seed {seed}'s classifier to {paths.EXPORT_DIR}/ ({ONNX}, {PROGRAM}, {META}); against "
          f"PyTorch on the raw test images, {found}")


if __name__ == "__main__":
    run_stage(main)
