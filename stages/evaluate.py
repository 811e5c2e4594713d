"""Stage evaluate@N: seed N's test loss and accuracy against the target, per class, confusion matrix, gallery.

    python -m stages.evaluate --seed 0
"""
import numpy as np
import torch

from cifarpipe.compute.device import compute_for
from cifarpipe.core import paths
from cifarpipe.core.artifacts import write_npz
from cifarpipe.core.live import open_live
from cifarpipe.core.params import runtime_settings, stage_params
from cifarpipe.core.paths import per_seed
from cifarpipe.core.stage import run_stage, seed_argument
from cifarpipe.data.dataset import load_splits
from cifarpipe.data.loader import test_batches
from cifarpipe.evaluate.figures import (confusion_figure, misclassified_figure, per_class_figure)
from cifarpipe.evaluate.metrics import confusion_matrix, per_class_accuracy
from cifarpipe.figures.common import save_figure
from cifarpipe.model.networks import load_trained
from cifarpipe.scoring.predict import loss_and_accuracy, predict_logits


def main():
    params, seed = stage_params("evaluate"), seed_argument("evaluate")
    compute = compute_for(params["train"])
    model = load_trained(params["model"], per_seed(paths.MODEL, seed), compute)
    data, stats = load_splits(params["data"], train=False)
    logits, labels = predict_logits(model, test_batches(data, stats, compute,
                                                        runtime_settings()["eval_batch_size"]),
                                    compute, tta_flip=params["evaluate"]["tta_flip"])
    test_loss, test_acc = loss_and_accuracy(logits, labels)
    probs = torch.softmax(logits, 1).cpu().numpy()
    preds, labels = probs.argmax(1), labels.cpu().numpy()
    classes, target = data["classes"], params["evaluate"]["target"]

    confusion = confusion_matrix(labels, preds, len(classes))
    per_class = per_class_accuracy(confusion)
    live = open_live(per_seed(paths.EVALUATE_LIVE, seed))
    live.log_metric("test_loss", round(test_loss, 6), plot=False)
    live.log_metric("test_acc", round(test_acc, 6), plot=False)
    live.summary.update({"target": target, "target_met": bool(test_acc >= target), "images": int(len(labels)),
                         "per_class_acc": {c: round(float(a), 4) for c, a in zip(classes, per_class)}})
    live.log_sklearn_plot("confusion_matrix", [classes[t] for t in labels], [classes[p] for p in preds],
                          name="confusion.json")
    live.end()
    save_figure(confusion_figure(confusion, classes), per_seed(paths.CONFUSION_PNG, seed))
    save_figure(per_class_figure(per_class, classes, target), per_seed(paths.PER_CLASS_PNG, seed))
    wrong = np.flatnonzero(preds != labels)
    shown = wrong[:params["evaluate"]["gallery"]]
    save_figure(misclassified_figure(data["x_test"][shown], labels[shown], preds[shown],
                                     probs[shown, preds[shown]], classes, len(wrong)),
                                     per_seed(paths.MISCLASSIFIED_PNG, seed))
    write_npz(per_seed(paths.PREDICTIONS, seed), labels=labels, preds=preds, probs=probs)
    print(f"seed {seed}: test accuracy {test_acc:.4f} (target {target}: "
          f"{'met' if test_acc >= target else 'NOT met'}), loss {test_loss:.4f}")


if __name__ == "__main__":
    run_stage(main)
