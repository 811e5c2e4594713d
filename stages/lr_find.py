"""Stage lr_find: the LR range test -> the suggested LRMAX, the curve as plot data and as a PNG.

    python -m stages.lr_find
"""
from cifarpipe import paths
from cifarpipe.artifacts import save_figure, write_csv, write_json
from cifarpipe.cli import run_stage
from cifarpipe.lr_finder import plot_range_test, range_test
from cifarpipe.params import load_params
from cifarpipe.pipeline import device_and_model, load_data, seeded_generator, train_loader
from cifarpipe.training import make_optimizer


def main():
    params = load_params()
    data, stats = load_data(params)
    device, model = device_and_model(params)
    loader = train_loader(params, data, stats, device, seeded_generator(params, device))
    cfg = params["lr_find"]
    optimizer = make_optimizer(model, params["optim"], cfg["start_lr"], device)

    result = range_test(model, optimizer, loader, start_lr=cfg["start_lr"], end_lr=cfg["end_lr"],
                        iterations=cfg["iterations"], smooth=cfg["smooth"], diverge=cfg["diverge"],
                        skip_start=cfg["skip_start"], skip_end=cfg["skip_end"],
                        bf16=params["train"]["bf16"])

    write_json(paths.LR_FIND_JSON, {"suggested_lr": result["suggested_lr"], "steps": len(result["lr"]),
                                    "stopped": result["stopped"]})
    write_csv(paths.LR_FIND_CSV, [{"lr": lr, "loss": loss} for lr, loss in zip(result["lr"], result["loss"])])
    save_figure(plot_range_test(result), paths.LR_FIND_PNG)
    print(f"suggested LRMAX {result['suggested_lr']:.3e} after {len(result['lr'])} steps ({result['stopped']})")


if __name__ == "__main__":
    run_stage(main)
