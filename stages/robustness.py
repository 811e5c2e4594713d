"""Stage robustness@N: seed N's model on the corrupted test sets (stage corrupt) ->
metrics/robustness/seedN.json (accuracy per corruption and severity, the mean corruption accuracy, per class,
the ECE under corruption with the clean temperature), plots/robustness/seedN.csv (accuracy by severity: mean,
min and max over the corruptions) and plots/robustness/seedN.png (the heatmap). Scored without test-time
augmentation, at the eval batch size, as many images as one evaluate run per severity.

    python -m stages.robustness --seed 0
"""
import numpy as np

from cifarpipe.compute.device import compute_for
from cifarpipe.core import paths
from cifarpipe.core.artifacts import read_json, write_csv, write_json
from cifarpipe.core.params import runtime_settings, stage_params
from cifarpipe.core.paths import per_seed
from cifarpipe.core.stage import run_stage, seed_argument
from cifarpipe.data.loader import DeviceLoader
from cifarpipe.figures.common import save_figure
from cifarpipe.model.networks import load_trained
from cifarpipe.robustness.figures import headline, heatmap_figure
from cifarpipe.robustness.scores import robustness
from cifarpipe.scoring.predict import predict_logits


def main():
    params, seed = stage_params("robustness"), seed_argument("robustness")
    compute = compute_for(params["train"])
    model = load_trained(params["model"], per_seed(paths.MODEL, seed), compute)
    with np.load(paths.CORRUPTED) as z:
        sets, labels = z["x"], z["y"]
        corruptions, severities = [str(c) for c in z["corruptions"]], [int(s) for s in z["severities"]]
        convention = {"benchmark": [str(c) for c in z["benchmark"]], "extras": [str(c) for c in z["extras"]],
                      "scale": [int(s) for s in z["scale"]]}  # CIFAR-10-C's, as the corrupt stage wrote them
    stats, batch = read_json(paths.STATS), runtime_settings()["eval_batch_size"]
    flat = sets.reshape(-1, *sets.shape[3:])  # every set, one after another
    loader = DeviceLoader(flat, np.tile(labels, len(corruptions) * len(severities)), stats, compute, batch)
    logits, _ = predict_logits(model, loader, compute, tta_flip=False)
    logits = logits.cpu().numpy().reshape(len(corruptions), len(severities), len(labels), -1)

    clean = read_json(per_seed(paths.EVALUATE_JSON, seed))
    temperature = read_json(per_seed(paths.CALIBRATION, seed))["temperature"]
    result = robustness(logits, labels, corruptions, severities, list(clean["per_class_acc"]), temperature,
                        params["evaluate"]["ece_bins"], **convention)
    write_json(per_seed(paths.ROBUSTNESS_JSON, seed), result)
    by_severity = np.array([result["accuracy"][c] for c in corruptions])
    write_csv(per_seed(paths.ROBUSTNESS_CSV, seed), [
        {"severity": s, "mean": float(by_severity[:, k].mean()), "min": float(by_severity[:, k].min()),
         "max": float(by_severity[:, k].max())} for k, s in enumerate(severities)])
    save_figure(heatmap_figure(result, clean["test_acc"]), per_seed(paths.HEATMAP_PNG, seed))
    print(f"seed {seed}: corruption accuracy {headline(result)} over {len(corruptions)} corruptions x "
          f"{len(severities)} severities (clean {clean['test_acc']:.4f}); "
          f"ECE under corruption {result['ece']:.4f} with the clean T {temperature:.3f}")


if __name__ == "__main__":
    run_stage(main)
