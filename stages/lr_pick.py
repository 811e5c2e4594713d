"""Stage lr_pick: the one-cycle schedule's LRMAX and LRMIN -> metrics/lr_pick.json, plots/lr_pick.png.

Read off the LR range test's curve by lr_pick.rule (docs/lr.md), so another rule never repeats the test; or,
with optim.lr set, LRMAX = optim.lr and LRMIN = LRMAX / schedule.lrmin_div.

    python -m stages.lr_pick
"""
from cifarpipe.core import paths
from cifarpipe.core.artifacts import read_json, write_json
from cifarpipe.core.params import stage_params
from cifarpipe.core.stage import run_stage
from cifarpipe.figures.common import save_figure
from cifarpipe.lr.figures import fixed_lr_figure, range_test_figure
from cifarpipe.lr.rules import pick, read_curve


def main():
    params = stage_params("lr_pick")
    cfg, lrmin_div, fixed = params.lr_pick, params.schedule.lrmin_div, params.optim.lr
    if fixed is not None:
        write_json(paths.LR_PICK_JSON, {"source": "optim.lr", "lr_max": fixed, "lr_min": fixed / lrmin_div})
        save_figure(fixed_lr_figure(fixed, fixed / lrmin_div), paths.LR_PICK_PNG)
        print(f"LRMAX {fixed:.3e} (optim.lr), LRMIN {fixed / lrmin_div:.3e} (LRMAX / schedule.lrmin_div)")
        return

    (lrs, losses), test = read_curve(paths.LR_FIND_CSV), read_json(paths.LR_FIND_JSON)
    picked = pick(lrs, losses, cfg, lrmin_div)
    write_json(paths.LR_PICK_JSON, {"source": "LR range test", **picked.record()})
    save_figure(range_test_figure(lrs, losses, picked, cfg, stopped=test["stopped"]),
                paths.LR_PICK_PNG)
    for note in picked.notes:
        print(f"note: {note}")
    if picked.fallback:
        print(f"fallback: {picked.fallback}")
    print(f"LRMAX {picked.lr_max:.3e} ({picked.rule} rule; loss lowest at LR {picked.loss_min_lr:.3e}), "
          f"LRMIN {picked.lr_min:.3e} ({cfg.lrmin})")


if __name__ == "__main__":
    run_stage(main)
