"""Stage robustness@N: seed N's model on the corrupted test sets -> metrics/robustness/seedN.json (accuracy
per corruption and severity, per class, the ECE), plots/robustness/seedN.csv (by severity) and the heatmap.

It predicts exactly as the evaluate stage does (evaluate.tta_flip, the temperature fitted on the same kind of
logits), so the clean and the corrupted figures compare like with like.

    python -m stages.robustness --seed 0
"""
from cifarpipe.compute.device import configure_torch, resolve_compute
from cifarpipe.core import paths
from cifarpipe.core.artifacts import read_json, write_csv, write_json
from cifarpipe.core.params import stage_params
from cifarpipe.core.paths import per_seed
from cifarpipe.core.stage import run_stage, seed_argument
from cifarpipe.figures.common import save_figure
from cifarpipe.model.networks import load_trained
from cifarpipe.robustness.figures import headline, heatmap_figure
from cifarpipe.robustness.scores import by_severity, robustness
from cifarpipe.robustness.sets import image_batches, read_layout
from cifarpipe.evaluate.scoring import predict_images


def main():
    params, seed = stage_params("robustness"), seed_argument("robustness")
    compute = configure_torch(resolve_compute(params.compute))
    model = load_trained(params.model, per_seed(paths.MODEL, seed), compute)
    layout, labels, fingerprint = read_layout(paths.CORRUPTED)
    stats = read_json(paths.STATS)
    calibrated = read_json(per_seed(paths.CALIBRATION, seed))
    # every set once, one batch at a time from the file, the mirror inside the same pass
    batches = image_batches(paths.CORRUPTED, params.runtime.eval_batch_size)
    logits = predict_images(model, batches, stats, compute, tta_flip=params.evaluate.tta_flip)
    logits = logits.reshape(len(layout.corruptions), len(layout.severities), len(labels), -1)

    clean = read_json(per_seed(paths.EVALUATE_JSON, seed))
    result = robustness(logits, labels, layout, list(clean["per_class_acc"]), calibrated["temperature"],
                        params.evaluate.ece_bins)
    result.update(tta_flip=params.evaluate.tta_flip, sets=fingerprint)
    write_json(per_seed(paths.ROBUSTNESS_JSON, seed), result)
    write_csv(per_seed(paths.ROBUSTNESS_CSV, seed), by_severity(result, layout))
    save_figure(heatmap_figure(result, clean["test_acc"]), per_seed(paths.HEATMAP_PNG, seed))
    print(f"seed {seed}: corruption accuracy {headline(result)} over {len(layout.corruptions)} corruptions x "
          f"{len(layout.severities)} severities (clean {clean['test_acc']:.4f}); ECE under corruption "
          f"{result['ece']:.4f} with the clean T {calibrated['temperature']:.3f}")


if __name__ == "__main__":
    run_stage(main)
