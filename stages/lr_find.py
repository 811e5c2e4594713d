"""Stage lr_find: the LR range test -> the smoothed loss per LR (plots/lr_find.csv) and how the test ended.

With optim.lr set the LRs are fixed: the stage records that no range test ran, without loading torch.

    python -m stages.lr_find
"""
import time

from cifarpipe.core import paths
from cifarpipe.core.artifacts import write_csv, write_json
from cifarpipe.core.params import stage_params
from cifarpipe.core.stage import run_stage


def main():
    params = stage_params("lr_find")
    cfg = params.lr_find
    if params.optim.lr is not None:
        write_csv(paths.LR_FIND_CSV, [], fields=["lr", "loss"])
        write_json(paths.LR_FIND_JSON, {"steps": 0, "stopped": "skipped: optim.lr is set", "range_test_s": 0})
        print(f"optim.lr is {params.optim.lr}: no LR range test")
        return
    # torch and what runs on it only from here: the skip above takes a fraction of a second, not three
    from cifarpipe.compute.device import configure_torch, resolve_compute
    from cifarpipe.data.dataset import load_splits
    from cifarpipe.data.loader import train_batches
    from cifarpipe.lr.range_test import range_test
    from cifarpipe.model.networks import build_model
    from cifarpipe.train.optimizers import make_optimizer

    compute = configure_torch(resolve_compute(params.compute), seed=cfg.seed)
    model = build_model(params.model, compute, seed=cfg.seed)
    optimizer = make_optimizer(model, params.optim, cfg.start_lr, compute.device)
    data, stats = load_splits(params.data, test=False)
    loader = train_batches(data, stats, compute, batch_size=params.train.batch_size, augment=params.augment,
                           seed=cfg.seed)

    started = time.perf_counter()
    result = range_test(model, optimizer, loader, compute, cfg)
    seconds = time.perf_counter() - started

    write_csv(paths.LR_FIND_CSV, [{"lr": lr, "loss": loss} for lr, loss in zip(result.lr, result.loss)])
    write_json(paths.LR_FIND_JSON, {"steps": len(result.lr), "stopped": result.stopped,
                                     "last_lr": result.lr[-1], "range_test_s": round(seconds, 2)})
    print(f"LR range test on {compute.describe()}: {len(result.lr)} steps up to LR {result.lr[-1]:.2e} "
          f"({result.stopped}) in {seconds:.1f} s")


if __name__ == "__main__":
    run_stage(main)
