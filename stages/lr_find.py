"""Stage lr_find: the LR range test -> the smoothed loss per LR (plots/lr_find.csv) and how the test ended.

Reading LRMAX and LRMIN off the curve is the next stage, lr_pick, so another rule never repeats the test.

    python -m stages.lr_find
"""
import time

from cifarpipe import paths
from cifarpipe.artifacts import write_csv, write_json
from cifarpipe.cli import run_stage
from cifarpipe.lr_finder import range_test
from cifarpipe.params import stage_params
from cifarpipe.pipeline import compute_and_model, load_data, train_loader
from cifarpipe.optim import make_optimizer


def main():
    params = stage_params("lr_find")
    data, stats = load_data(params, test=False)
    compute, model = compute_and_model(params)
    loader = train_loader(params, data, stats, compute)
    cfg = params["lr_find"]
    optimizer = make_optimizer(model, params["optim"], cfg["start_lr"], compute.device)

    started = time.perf_counter()
    result = range_test(model, optimizer, loader, compute, start_lr=cfg["start_lr"], end_lr=cfg["end_lr"],
                        iterations=cfg["iterations"], smooth=cfg["smooth"], diverge=cfg["diverge"])
    seconds = time.perf_counter() - started

    write_csv(paths.LR_FIND_CSV, [{"lr": lr, "loss": loss} for lr, loss in zip(result["lr"], result["loss"])])
    write_json(paths.LR_RANGE_JSON, {"steps": len(result["lr"]), "stopped": result["stopped"],
                                     "last_lr": result["lr"][-1], "range_test_s": round(seconds, 2)})
    print(f"LR range test on {compute.describe()}: {len(result['lr'])} steps up to LR {result['lr'][-1]:.2e} "
          f"({result['stopped']}) in {seconds:.1f} s")


if __name__ == "__main__":
    run_stage(main)
