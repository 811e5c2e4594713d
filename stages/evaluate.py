"""Stage evaluate@N: seed N's test accuracy against the target, per class, confusion matrix, gallery and
calibration (dvclive/evaluate/seedN/, plots/evaluate/seedN/); the temperature kept beside the model.

    python -m stages.evaluate --seed 0
"""
import numpy as np
from scipy.special import softmax

from cifarpipe.evaluate.calibration import calibration
from cifarpipe.compute.device import configure_torch, resolve_compute
from cifarpipe.core import paths
from cifarpipe.core.artifacts import write_json, write_npz
from cifarpipe.core.live import open_live
from cifarpipe.core.params import stage_params
from cifarpipe.core.paths import per_seed
from cifarpipe.core.stage import run_stage, seed_argument
from cifarpipe.data.dataset import load_splits
from cifarpipe.data.loader import test_batches
from cifarpipe.evaluate.figures import (
    confusion_figure,
    misclassified_figure,
    per_class_figure,
    reliability_figure,
)
from cifarpipe.evaluate.metrics import confusion_matrix, per_class_accuracy
from cifarpipe.figures.common import save_figure
from cifarpipe.model.networks import load_trained
from cifarpipe.evaluate.scoring import loss_and_accuracy, predict_logits


def main():
    params, seed = stage_params("evaluate"), seed_argument("evaluate")
    cfg = params.evaluate
    compute = configure_torch(resolve_compute(params.compute))
    model = load_trained(params.model, per_seed(paths.MODEL, seed), compute)
    data, stats = load_splits(params.data, train=False)
    batches = test_batches(data, stats, compute, params.runtime.eval_batch_size)
    logits, labels = predict_logits(model, batches, compute, tta_flip=cfg.tta_flip)
    test_loss, test_acc = loss_and_accuracy(logits, labels)
    logits, labels = logits.cpu().numpy(), labels.cpu().numpy()
    probs = softmax(logits, axis=1)
    preds = probs.argmax(1)
    classes = data["classes"]
    confusion = confusion_matrix(labels, preds, len(classes))
    per_class = per_class_accuracy(confusion)
    calibrated = calibration(logits, labels, cfg.ece_bins)
    met = bool(test_acc >= cfg.target)

    live = open_live(per_seed(paths.EVALUATE_LIVE, seed))
    live.log_metric("test_loss", round(test_loss, 6), plot=False)
    live.log_metric("test_acc", round(test_acc, 6), plot=False)
    live.summary.update({"target": cfg.target, "target_met": met, "images": int(len(labels))})
    live.summary.update({name: round(value, 6) for name, value in calibrated.scores().items()})
    live.summary["per_class_acc"] = {c: round(float(a), 4) for c, a in zip(classes, per_class)}
    live.log_sklearn_plot("confusion_matrix", [classes[t] for t in labels], [classes[p] for p in preds],
                          name="confusion.json")
    live.log_plot("reliability", [b for b in calibrated.bins if b["images"]], x="confidence", y="accuracy",
                  title="Reliability", x_label="confidence (mean of the bin)", y_label="accuracy")
    live.end()
    write_json(per_seed(paths.CALIBRATION, seed), {
        "temperature": calibrated.temperature, "tta_flip": cfg.tta_flip,
        "fitted_on": f"the {len(labels)} test images (NLL)",
        "note": "for new images only: scoring these test images with it would fit and score on the same "
                "ones"})

    save_figure(confusion_figure(confusion, classes), per_seed(paths.CONFUSION_PNG, seed))
    save_figure(per_class_figure(per_class, classes, cfg.target), per_seed(paths.PER_CLASS_PNG, seed))
    save_figure(reliability_figure(calibrated), per_seed(paths.RELIABILITY_PNG, seed))
    wrong = np.flatnonzero(preds != labels)
    shown = wrong[:cfg.gallery]
    gallery = misclassified_figure(data["x_test"][shown], labels[shown], preds[shown],
                                   probs[shown, preds[shown]], classes, len(wrong))
    save_figure(gallery, per_seed(paths.MISCLASSIFIED_PNG, seed))
    write_npz(per_seed(paths.PREDICTIONS, seed), labels=labels, preds=preds, probs=probs)
    print(f"seed {seed}: test accuracy {test_acc:.4f} (target {cfg.target}: {'met' if met else 'NOT met'}), "
          f"loss {test_loss:.4f}; ECE {calibrated.ece:.4f}, {calibrated.ece_calibrated:.4f} after "
          f"temperature scaling (T {calibrated.temperature:.3f})")


if __name__ == "__main__":
    run_stage(main)
