"""Stage train@N: the one-cycle training run of seed N -> the weights and, through dvclive, the per-epoch
metrics.

LRMAX and LRMIN come from metrics/lr_pick.json (stage lr_pick: the LR range test, or optim.lr when set). A
killed run resumes from its last epoch when `dvc repro` runs again. With train.gpus > 1 the script starts one
rank per GPU (cifarpipe/train/distributed.py); rank 0 writes the outputs. DVC runs it once per seed of
train.seeds (a matrix stage).

    python -m stages.train --seed 0
"""
from cifarpipe.compute.device import compute_for
from cifarpipe.compute.ranks import SINGLE
from cifarpipe.core import paths
from cifarpipe.core.artifacts import read_json, torch_save
from cifarpipe.core.live import open_live
from cifarpipe.core.params import runtime_settings, stage_params
from cifarpipe.core.paths import per_seed
from cifarpipe.core.stage import run_stage, seed_argument
from cifarpipe.data.dataset import load_splits
from cifarpipe.data.loader import test_batches, train_batches
from cifarpipe.model.networks import build_model, count_parameters
from cifarpipe.train.compile import compile_for_training
from cifarpipe.train.distributed import join, launch, launched, leave, wrap
from cifarpipe.train.loop import TrainConfig, fingerprint, remove_checkpoint, train


def log_epoch(live, entry: dict) -> None:
    """One epoch's metrics at step = its epoch number; dvclive updates the summary on disk at once."""
    live.step = entry["epoch"]
    for name, value in entry.items():
        if name != "epoch":
            live.log_metric(name, value)
    live.next_step()


def main():
    params, runtime, seed = stage_params("train"), runtime_settings(), seed_argument("train")
    cfg = params["train"]
    if cfg["gpus"] > 1 and not launched():  # start one rank per GPU; each runs main() again
        return launch(cfg["gpus"], "stages.train", cfg["device"], ["--seed", str(seed)])
    ranks, device = join(cfg["device"]) if launched() else (SINGLE, None)
    compute = compute_for(cfg, seed=seed, device=device, ranks=ranks)
    model = build_model(params["model"], compute)
    lr = read_json(paths.LR_PICK_JSON)
    data, stats = load_splits(params["data"])
    train_loader = train_batches(params, data, stats, compute, seed=seed)
    test_loader = test_batches(data, stats, compute, runtime["eval_batch_size"])
    if ranks.main:
        print(f"seed {seed}, {params['model']['name']} (width {params['model']['width']}): "
              f"{count_parameters(model):,} parameters on {compute.describe()}"
              f"{f' x {ranks.world} ranks' if ranks.world > 1 else ''}; LRMAX {lr['lr_max']:.3e}, "
              f"LRMIN {lr['lr_min']:.3e} ({lr['source']}); {len(data['y_train'])} train / "
              f"{len(data['y_test'])} test "
              "images")

    step_model, compile_s = wrap(model, compute), 0.0
    if cfg["compile"]:
        step_model, compile_s = compile_for_training(step_model, train_loader, compute,
                                                     mode=cfg["compile_mode"])
        print(f"compiled for batch sizes {train_loader.batch_sizes()} in {compile_s:.1f} s")

    # per-epoch metrics, followed live
    live = open_live(per_seed(paths.TRAIN_LIVE, seed)) if ranks.main else None
    config = TrainConfig(optim=params["optim"], schedule=params["schedule"], lr=lr,
                         progress_updates=runtime["progress_updates"],
                         checkpoint=per_seed(paths.CHECKPOINT, seed) if runtime["checkpoint"] else None,
                         fingerprint=fingerprint({k: params[k] for k in params}, seed, lr, stats))
    history = train(model, train_loader, test_loader, compute, config, step_model=step_model,
                    on_epoch=lambda history: log_epoch(live, history[-1]))
    leave()
    if not ranks.main:
        return

    torch_save(model.state_dict(), per_seed(paths.MODEL, seed))
    train_s = sum(h["epoch_s"] for h in history)
    # the summary holds the last epoch's metrics (its test numbers renamed: the evaluate stage's test_acc,
    # with
    # TTA, is the one that counts, and dvc exp show keeps plain names only where they are unique); then the
    # run's
    for name in ("test_loss", "test_acc"):
        live.summary[f"last_epoch_{name}"] = live.summary.pop(name)
    live.summary.update({"epochs": len(history), "steps_per_epoch": len(train_loader),
                         "train_s": round(train_s, 2), "epoch_s": round(train_s / len(history), 3),
                         "compile_s": round(compile_s, 2), "precision": compute.precision,
                         "ranks": ranks.world})
    live.end()
    remove_checkpoint(config.checkpoint)


if __name__ == "__main__":
    run_stage(main)
