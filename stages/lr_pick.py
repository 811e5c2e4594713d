"""Stage lr_pick: read LRMAX and LRMIN off the LR range test's curve -> metrics/lr_find.json, plots/lr_find.png.

The rule is lr_pick.rule (default: the LR at the lowest smoothed loss / lr_pick.min_div); see
cifarpipe/lr_rules.py for each rule and why. Seconds: the range test itself is not repeated.

    python -m stages.lr_pick
"""
import csv

from cifarpipe import paths
from cifarpipe.artifacts import read_json, save_figure, write_json
from cifarpipe.cli import run_stage
from cifarpipe.lr_rules import pick
from cifarpipe.params import stage_params
from cifarpipe.reports import range_test_figure


def main():
    params = stage_params("lr_pick")
    with open(paths.LR_FIND_CSV) as f:
        curve = [(float(row["lr"]), float(row["loss"])) for row in csv.DictReader(f)]
    lrs, losses = [lr for lr, _ in curve], [loss for _, loss in curve]
    test = read_json(paths.LR_RANGE_JSON)
    cfg = params["lr_pick"]

    picked = pick(lrs, losses, rule=cfg["rule"], min_div=cfg["min_div"], lrmin=cfg["lrmin"],
                  lrmin_div=params["schedule"]["lrmin_div"], fall_frac=cfg["fall_frac"],
                  skip_start=cfg["skip_start"], skip_end=cfg["skip_end"])

    # lr_max / lr_min are named apart from the train stage's (what a run used), so dvc exp show shows both plainly
    renamed = {"lr_max": "suggested_lr_max", "lr_min": "suggested_lr_min"}
    write_json(paths.LR_FIND_JSON, {renamed.get(k, k): v for k, v in picked.items() if k != "notes"})
    save_figure(range_test_figure(lrs, losses, picked, cfg, stopped=test["stopped"]), paths.LR_FIND_PNG)
    for note in picked["notes"]:
        print(f"note: {note}")
    print(f"LRMAX {picked['lr_max']:.3e} ({cfg['rule']} rule; loss lowest at LR {picked['loss_min_lr']:.3e}), "
          f"LRMIN {picked['lr_min']:.3e} ({cfg['lrmin']})")


if __name__ == "__main__":
    run_stage(main)
