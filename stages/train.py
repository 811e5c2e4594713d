"""Stage train: the one-cycle training run -> weights, per-epoch metrics, curves, model summary, samples.

LRMAX and LRMIN come from the LR range test (lr_pick), unless optim.lr is set: then LRMAX = optim.lr and
LRMIN = LRMAX / schedule.lrmin_div. A killed run resumes from its last epoch when `dvc repro` runs again.
With train.gpus > 1 the script starts one rank per GPU (cifarpipe.distributed); rank 0 writes the outputs.

    python -m stages.train
"""
from cifarpipe import paths
from cifarpipe.artifacts import read_json, save_figure, torch_save, write_csv, write_text
from cifarpipe.cli import run_stage
from cifarpipe.distributed import SINGLE, join, launch, launched, leave, wrap
from cifarpipe.models import count_parameters, summary
from cifarpipe.params import runtime_settings, stage_params
from cifarpipe.pipeline import (augmented_samples, compute_and_model, fingerprint, load_data, test_loader,
                                train_loader)
from cifarpipe.reports import denormalize, image_grid, training_curves
from cifarpipe.schedule import one_cycle_lr, schedule_steps
from cifarpipe.tracking import log_epoch, open_live
from cifarpipe.training import compile_for_training, remove_checkpoint, train

SAMPLES = 32


def lr_bounds(params) -> tuple[float, float, str]:
    """(LRMAX, LRMIN, where they came from)."""
    if params["optim"]["lr"] is not None:
        return params["optim"]["lr"], params["optim"]["lr"] / params["schedule"]["lrmin_div"], "optim.lr"
    picked = read_json(paths.LR_FIND_JSON)
    return picked["suggested_lr_max"], picked["suggested_lr_min"], f"LR range test, {picked['rule']} rule"


def main():
    params, runtime = stage_params("train"), runtime_settings()
    if params["train"]["gpus"] > 1 and not launched():  # start one rank per GPU; each runs main() again
        return launch(params["train"]["gpus"], "stages.train", params["train"]["device"])
    ranks, device = join(params["train"]["device"]) if launched() else (SINGLE, None)
    data, stats = load_data(params)
    compute, model = compute_and_model(params, device=device)
    lr_max, lr_min, lr_source = lr_bounds(params)
    train_batches = train_loader(params, data, stats, compute, shard=(ranks.rank, ranks.world))
    test_batches = test_loader(data, stats, compute, runtime["eval_batch_size"])
    total, peak = schedule_steps(params["schedule"]["epochs"], params["schedule"]["peak_epoch"], len(train_batches))
    if ranks.main:
        print(f"{params['model']['name']}: {count_parameters(model):,} parameters on {compute.describe()}"
              f"{f' x {ranks.world} ranks' if ranks.world > 1 else ''}; LRMAX {lr_max:.3e}, LRMIN {lr_min:.3e} "
              f"({lr_source}); {len(data['y_train'])} train / {len(data['y_test'])} test images")
        write_text(paths.MODEL_SUMMARY, summary(model))
        x, y = augmented_samples(train_batches, SAMPLES, params["train"]["seed"])
        save_figure(image_grid(denormalize(x.float().cpu().numpy(), stats["mean"], stats["std"]),
                               [data["classes"][i] for i in y.tolist()], suptitle="augmented training samples"),
                    paths.SAMPLES_PNG)
        write_csv(paths.LR_SCHEDULE_CSV, [{"step": s, "lr": one_cycle_lr(s, total, peak, lr_max, lr_min)}
                                          for s in range(total)])

    step_model, compile_s = wrap(model, ranks, compute.device), 0.0
    if params["train"]["compile"]:
        step_model, compile_s = compile_for_training(step_model, train_batches, compute,
                                                     mode=params["train"]["compile_mode"])
        print(f"compiled for batch sizes {train_batches.batch_sizes()} in {compile_s:.1f} s")

    live = open_live(paths.TRAIN_LIVE) if ranks.main else None  # per-epoch metrics, followed live
    run_id = fingerprint({k: params[k] for k in params}, lr_max, lr_min, stats)
    history = train(model, train_batches, test_batches, compute=compute, optim=params["optim"], lr_max=lr_max,
                    lr_min=lr_min, schedule=params["schedule"], generator=train_batches.generator,
                    progress_updates=runtime["progress_updates"], step_model=step_model,
                    checkpoint_path=paths.CHECKPOINT if runtime["checkpoint"] else None, fingerprint=run_id,
                    on_epoch=lambda history: log_epoch(live, history[-1]), ranks=ranks)
    leave()
    if not ranks.main:
        return

    torch_save(model.state_dict(), paths.MODEL)
    save_figure(training_curves(history), paths.CURVES_PNG)
    train_s = sum(h["epoch_s"] for h in history)
    # the summary holds the last epoch's metrics (its test numbers renamed: the evaluate stage's test_acc, with
    # TTA, is the one that counts, and dvc exp show keeps plain names only where they are unique); then the run's
    for name in ("test_loss", "test_acc"):
        live.summary[f"last_epoch_{name}"] = live.summary.pop(name)
    live.summary.update({"lr_max": lr_max, "lr_min": lr_min, "epochs": len(history), "train_s": round(train_s, 2),
                         "epoch_s": round(train_s / len(history), 3), "compile_s": round(compile_s, 2),
                         "precision": compute.precision, "ranks": ranks.world})
    live.end()
    remove_checkpoint(paths.CHECKPOINT)


if __name__ == "__main__":
    run_stage(main)
