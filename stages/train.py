"""Stage train: the one-cycle training run -> weights, per-epoch metrics, curves, model summary, samples.

LRMAX is optim.lr when set, else the LR finder's suggestion; LRMIN = LRMAX / schedule.lrmin_div.
A killed run resumes from its last epoch when `dvc repro` runs again.

    python -m stages.train
"""
from cifarpipe import paths
from cifarpipe.artifacts import read_json, save_figure, torch_save, write_csv, write_json, write_text
from cifarpipe.cli import run_stage
from cifarpipe.models import count_parameters, summary
from cifarpipe.params import load_params
from cifarpipe.pipeline import (augmented_samples, device_and_model, fingerprint, load_data, seeded_generator,
                                test_loader, train_loader)
from cifarpipe.reports import denormalize, image_grid, training_curves
from cifarpipe.schedule import lr_bounds, one_cycle_lr
from cifarpipe.training import remove_checkpoint, train

SAMPLES = 32


def main():
    params = load_params()
    data, stats = load_data(params)
    device, model = device_and_model(params)
    lr_max, lr_min = lr_bounds(params["optim"]["lr"] or read_json(paths.LR_FIND_JSON)["suggested_lr"],
                               params["schedule"]["lrmin_div"])
    train_batches = train_loader(params, data, stats, device, seeded_generator(params, device))
    test_batches = test_loader(params, data, stats, device)
    print(f"{params['model']['name']}: {count_parameters(model):,} parameters on {device}; "
          f"LRMAX {lr_max:.3e}, LRMIN {lr_min:.3e}; {len(data['y_train'])} train / {len(data['y_test'])} test images")

    write_text(paths.MODEL_SUMMARY, summary(model))
    x, y = augmented_samples(train_batches, SAMPLES, params["train"]["seed"])
    save_figure(image_grid(denormalize(x.float().cpu().numpy(), stats["mean"], stats["std"]),
                           [data["classes"][i] for i in y.tolist()], suptitle="augmented training samples"),
                paths.SAMPLES_PNG)
    steps, epochs = len(train_batches), params["schedule"]["epochs"]
    peak = round(params["schedule"]["peak_epoch"] * steps)
    write_csv(paths.LR_SCHEDULE_CSV, [{"step": s, "lr": one_cycle_lr(s, epochs * steps, peak, lr_max, lr_min)}
                                      for s in range(epochs * steps)])

    def on_epoch(history):  # live plot data: `dvc plots show` draws the run while it trains
        write_csv(paths.HISTORY_CSV, history)

    run_id = fingerprint({k: params[k] for k in ("data", "model", "augment", "optim", "schedule", "train")},
                         lr_max, stats)
    history = train(model, train_batches, test_batches, optim=params["optim"], lr_max=lr_max,
                    schedule=params["schedule"], train_cfg=params["train"], generator=train_batches.generator,
                    checkpoint_path=paths.CHECKPOINT, fingerprint=run_id, on_epoch=on_epoch)

    torch_save(model.state_dict(), paths.MODEL)
    write_csv(paths.HISTORY_CSV, history)
    save_figure(training_curves(history), paths.CURVES_PNG)
    last = history[-1]
    write_json(paths.TRAIN_JSON, {"train_loss": last["train_loss"], "train_acc": last["train_acc"],
                                  "last_epoch_test_acc": last["test_acc"], "lr_max": lr_max, "lr_min": lr_min,
                                  "epochs": len(history), "train_s": round(sum(h["epoch_s"] for h in history), 2),
                                  "epoch_s": round(sum(h["epoch_s"] for h in history) / len(history), 3)})
    remove_checkpoint(paths.CHECKPOINT)


if __name__ == "__main__":
    run_stage(main)
