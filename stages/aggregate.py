"""Stage aggregate: the training run for people and for `dvc plots` -> plots/curves.png, plots/lr_schedule.csv.

Drawn from what train logged, so restyling a curve reruns this stage alone, never the training.

    python -m stages.aggregate
"""
from cifarpipe import paths
from cifarpipe.artifacts import read_json, write_csv
from cifarpipe.params import stage_params
from cifarpipe.reports.common import save_figure
from cifarpipe.reports.curves import training_curves
from cifarpipe.results import read_history
from cifarpipe.schedule import one_cycle_lr, schedule_steps
from cifarpipe.stage import run_stage


def main():
    params = stage_params("aggregate")
    history, summary, lr = read_history(paths.TRAIN_HISTORY), read_json(paths.TRAIN_JSON), read_json(paths.LR_JSON)
    total, peak = schedule_steps(params["schedule"]["epochs"], params["schedule"]["peak_epoch"],
                                 summary["steps_per_epoch"])
    write_csv(paths.LR_SCHEDULE_CSV, [{"step": s, "lr": one_cycle_lr(s, total, peak, lr["lr_max"], lr["lr_min"])}
                                      for s in range(total)])
    save_figure(training_curves(history.to_dict("records")), paths.CURVES_PNG)
    print(f"wrote {paths.CURVES_PNG} ({len(history)} epochs) and {paths.LR_SCHEDULE_CSV} ({total} steps)")


if __name__ == "__main__":
    run_stage(main)
