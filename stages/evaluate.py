"""Stage evaluate@N: seed N's test loss and accuracy against the target, per class, confusion matrix, gallery;
its calibration (ECE, NLL, Brier, before and after temperature scaling: cifarpipe/calibration/scores.py), a
reliability diagram, and the temperature kept beside the model (models/seedN/calibration.json).

    python -m stages.evaluate --seed 0
"""
import numpy as np
import torch

from cifarpipe.compute.device import compute_for
from cifarpipe.core import paths
from cifarpipe.core.artifacts import write_json, write_npz
from cifarpipe.core.live import open_live
from cifarpipe.core.params import runtime_settings, stage_params
from cifarpipe.core.paths import per_seed
from cifarpipe.core.stage import run_stage, seed_argument
from cifarpipe.data.dataset import load_splits
from cifarpipe.data.loader import test_batches
from cifarpipe.calibration.scores import calibration
from cifarpipe.evaluate.figures import (confusion_figure, misclassified_figure, per_class_figure,
                                        reliability_figure)
from cifarpipe.evaluate.metrics import confusion_matrix, per_class_accuracy
from cifarpipe.figures.common import save_figure
from cifarpipe.model.networks import load_trained
from cifarpipe.scoring.predict import loss_and_accuracy, predict_logits


def main():
    params, seed = stage_params("evaluate"), seed_argument("evaluate")
    cfg = params["evaluate"]
    compute = compute_for(params["train"])
    model = load_trained(params["model"], per_seed(paths.MODEL, seed), compute)
    data, stats = load_splits(params["data"], train=False)
    batches = test_batches(data, stats, compute, runtime_settings()["eval_batch_size"])
    logits, labels = predict_logits(model, batches, compute, tta_flip=cfg["tta_flip"])
    test_loss, test_acc = loss_and_accuracy(logits, labels)
    logits, labels = logits.cpu().numpy(), labels.cpu().numpy()
    probs = torch.softmax(torch.from_numpy(logits), 1).numpy()
    preds, classes, target = probs.argmax(1), data["classes"], cfg["target"]

    confusion = confusion_matrix(labels, preds, len(classes))
    per_class = per_class_accuracy(confusion)
    calibrated = calibration(logits, labels, cfg["ece_bins"])
    bins = calibrated.pop("bins")
    live = open_live(per_seed(paths.EVALUATE_LIVE, seed))
    live.log_metric("test_loss", round(test_loss, 6), plot=False)
    live.log_metric("test_acc", round(test_acc, 6), plot=False)
    live.summary.update({"target": target, "target_met": bool(test_acc >= target), "images": int(len(labels)),
                         **{k: round(v, 6) for k, v in calibrated.items()},
                         "per_class_acc": {c: round(float(a), 4) for c, a in zip(classes, per_class)}})
    live.log_sklearn_plot("confusion_matrix", [classes[t] for t in labels], [classes[p] for p in preds],
                          name="confusion.json")
    live.log_plot("reliability", [b for b in bins if b["images"]], x="confidence", y="accuracy",
                  title="Reliability", x_label="confidence (mean of the bin)", y_label="accuracy")
    live.end()
    write_json(per_seed(paths.CALIBRATION, seed), {
        "temperature": calibrated["temperature"], "fitted_on": f"the {len(labels)} test images (NLL)",
        "note": "for new images only: scoring these test images with it would fit and score on the same "
        "ones"})
    save_figure(confusion_figure(confusion, classes), per_seed(paths.CONFUSION_PNG, seed))
    save_figure(per_class_figure(per_class, classes, target), per_seed(paths.PER_CLASS_PNG, seed))
    save_figure(reliability_figure(bins, calibrated), per_seed(paths.RELIABILITY_PNG, seed))
    wrong = np.flatnonzero(preds != labels)
    shown = wrong[:cfg["gallery"]]
    save_figure(misclassified_figure(data["x_test"][shown], labels[shown], preds[shown],
                                     probs[shown, preds[shown]], classes, len(wrong)),
                                     per_seed(paths.MISCLASSIFIED_PNG, seed))
    write_npz(per_seed(paths.PREDICTIONS, seed), labels=labels, preds=preds, probs=probs)
    print(f"seed {seed}: test accuracy {test_acc:.4f} (target {target}: "
          f"{'met' if test_acc >= target else 'NOT met'}), loss {test_loss:.4f}; ECE "
          f"{calibrated['ece']:.4f}, {calibrated['ece_calibrated']:.4f} after temperature scaling (T "
          f"{calibrated['temperature']:.3f})")


if __name__ == "__main__":
    run_stage(main)
