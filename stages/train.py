"""Stage train@N: seed N's one-cycle training run -> models/seedN/model.pt and per-epoch metrics (dvclive).

LRMAX and LRMIN come from metrics/lr_pick.json. A killed run resumes from its last epoch. With compute.gpus > 1
the stage starts one rank per GPU and rank 0 writes the outputs.

    python -m stages.train --seed 0
"""
from cifarpipe.compute.device import configure_torch, resolve_compute
from cifarpipe.compute.ranks import SINGLE
from cifarpipe.core import paths
from cifarpipe.core.artifacts import read_json, torch_save
from cifarpipe.core.live import log_epoch, open_live
from cifarpipe.core.params import stage_params
from cifarpipe.core.paths import per_seed
from cifarpipe.core.stage import run_stage, seed_argument
from cifarpipe.data.dataset import load_splits
from cifarpipe.model.networks import count_parameters
from cifarpipe.train.distributed import join, launch, launched, leave
from cifarpipe.train.loop import remove_checkpoint, train
from cifarpipe.train.prepare import set_up_training


def main():
    params, seed = stage_params("train"), seed_argument("train")
    if params.compute.gpus > 1 and not launched():  # start one rank per GPU; each runs main() again
        return launch(params.compute.gpus, "stages.train", params.compute.device, ["--seed", str(seed)])
    ranks, device = join(params.compute.device) if launched() else (SINGLE, None)
    compute = configure_torch(resolve_compute(params.compute, device=device, ranks=ranks), seed=seed)
    lr = read_json(paths.LR_PICK_JSON)
    data, stats = load_splits(params.data)
    checkpoint = per_seed(paths.CHECKPOINT, seed) if params.runtime.checkpoint else None
    run = set_up_training(params, data, stats, compute, seed=seed, lr_max=lr["lr_max"], lr_min=lr["lr_min"],
                          checkpoint=checkpoint)
    if ranks.main:
        ranked = f" x {ranks.world} ranks" if ranks.world > 1 else ""
        print(f"seed {seed}, {params.model.name} (width {params.model.width}): "
              f"{count_parameters(run.model):,} parameters on {compute.describe()}{ranked}; "
              f"LRMAX {lr['lr_max']:.3e}, LRMIN {lr['lr_min']:.3e} ({lr['source']}); "
              f"{len(data['y_train'])} train / {len(data['y_test'])} test images")
    if params.compute.compile:
        print(f"compiled for batch sizes {run.train_loader.batch_sizes()} in {run.compile_s:.1f} s")

    live = open_live(per_seed(paths.TRAIN_LIVE, seed)) if ranks.main else None
    history = train(run.model, run.train_loader, run.test_loader, compute, run.config,
                    step_model=run.step_model, on_epoch=lambda history: log_epoch(live, history[-1]))
    leave()
    if not ranks.main:
        return

    torch_save(run.model.state_dict(), per_seed(paths.MODEL, seed))
    train_s = sum(epoch["epoch_s"] for epoch in history)
    live.summary.update({"epochs": len(history), "steps_per_epoch": len(run.train_loader),
                         "train_s": round(train_s, 2), "epoch_s": round(train_s / len(history), 3),
                         "compile_s": round(run.compile_s, 2), "precision": compute.precision,
                         "ranks": ranks.world})
    live.end()
    remove_checkpoint(checkpoint)


if __name__ == "__main__":
    run_stage(main)
