"""Stage evaluate: test loss and accuracy against the target, per-class accuracy, confusion matrix, gallery.

    python -m stages.evaluate
"""
import numpy as np
import torch

from cifarpipe import paths
from cifarpipe.artifacts import atomic_path, save_figure, write_csv
from cifarpipe.cli import run_stage
from cifarpipe.evaluation import confusion_matrix, loss_and_accuracy, per_class_accuracy, predict_logits
from cifarpipe.params import runtime_settings, stage_params
from cifarpipe.pipeline import load_data, test_loader, trained_model
from cifarpipe.reports import confusion_figure, image_grid, per_class_figure
from cifarpipe.tracking import open_live


def main():
    params = stage_params("evaluate")
    data, stats = load_data(params, train=False)
    compute, model = trained_model(params)
    logits, labels = predict_logits(model, test_loader(data, stats, compute, runtime_settings()["eval_batch_size"]),
                                    compute, tta_flip=params["evaluate"]["tta_flip"])
    test_loss, test_acc = loss_and_accuracy(logits, labels)
    probs = torch.softmax(logits, 1).cpu().numpy()
    preds, labels = probs.argmax(1), labels.cpu().numpy()
    classes, target = data["classes"], params["evaluate"]["target"]

    confusion = confusion_matrix(labels, preds, len(classes))
    per_class = per_class_accuracy(confusion)
    live = open_live(paths.EVALUATE_LIVE)
    live.log_metric("test_loss", round(test_loss, 6), plot=False)
    live.log_metric("test_acc", round(test_acc, 6), plot=False)
    live.summary.update({"target": target, "target_met": bool(test_acc >= target), "images": int(len(labels)),
                         "per_class_acc": {c: round(float(a), 4) for c, a in zip(classes, per_class)}})
    live.log_sklearn_plot("confusion_matrix", [classes[t] for t in labels], [classes[p] for p in preds],
                          name="confusion.json")
    live.end()
    write_csv(paths.PER_CLASS_CSV, [{"class": c, "accuracy": round(float(a), 4)} for c, a in zip(classes, per_class)])
    save_figure(confusion_figure(confusion, classes), paths.CONFUSION_PNG)
    save_figure(per_class_figure(per_class, classes, target), paths.PER_CLASS_PNG)

    wrong = np.flatnonzero(preds != labels)[:params["evaluate"]["gallery"]]
    save_figure(image_grid(data["x_test"][wrong], [f"true {classes[labels[i]]}\npred {classes[preds[i]]} "
                                                  f"({probs[i, preds[i]]:.0%})" for i in wrong], cols=5,
                           suptitle=f"misclassified test images ({len(wrong)} of {int((preds != labels).sum())})"),
                paths.MISCLASSIFIED_PNG)
    with atomic_path(paths.PREDICTIONS) as tmp, open(tmp, "wb") as f:
        np.savez(f, labels=labels, preds=preds, probs=probs)
    print(f"test accuracy {test_acc:.4f} (target {target}: {'met' if test_acc >= target else 'NOT met'}), "
          f"loss {test_loss:.4f}")


if __name__ == "__main__":
    run_stage(main)
