"""Stage aggregate: what the seeds of train.seeds say together -> metrics/verdict.json (the DVC metrics),
metrics/aggregate.json, metrics/seeds.csv, the curves over seeds (plots/seeds/, plots/curves.png) and the LR
schedule (plots/lr_schedule.csv).

For the test accuracy and loss, the training seconds and each class's accuracy: n, mean, std, min, max and the
noise.confidence interval of the mean, then the target verdict those numbers support (aggregate/noise.py): met
only when the interval clears evaluate.target. It reads the seeds of train.seeds only, so it alone reruns when
the list changes; the other seeds' stages stay cached.

    python -m stages.aggregate
"""
from cifarpipe.aggregate.figures import training_curves
from cifarpipe.aggregate.noise import summarize, target_verdict, verdict_note
from cifarpipe.aggregate.results import CALIBRATION, histories, seed_table
from cifarpipe.core import paths
from cifarpipe.core.artifacts import read_json, write_csv, write_json
from cifarpipe.core.params import stage_params
from cifarpipe.core.stage import run_stage
from cifarpipe.figures.common import save_figure
from cifarpipe.schedule.one_cycle import one_cycle_lr, schedule_steps


def main():
    params = stage_params("aggregate")
    seeds, confidence = params["train"]["seeds"], params["noise"]["confidence"]
    target = params["evaluate"]["target"]
    table, history = seed_table(seeds), histories(seeds)

    summary = {name: summarize(table[name], confidence) for name in ("test_acc", "test_loss", "train_s")
               + CALIBRATION
               + ("corrupt_acc", "ece_corrupted")}
    acc = summary["test_acc"]
    verdict, met = target_verdict(acc, target), int((table["test_acc"] >= target).sum())
    lr = read_json(paths.LR_PICK_JSON)
    spread = f", {confidence:.0%} CI {acc['ci_low']:.4f}..{acc['ci_high']:.4f}" if acc["n"] > 1 else ""
    note = f" ({verdict_note(verdict)})" if verdict_note(verdict) else ""
    verdict_line = (f"{len(seeds)} seed(s): test accuracy {acc['mean']:.4f}{spread}; "
                    f"target {target}: {verdict}{note}")

    def half_width(name):  # of the interval of the mean; None with one seed
        s = summary[name]
        return None if s["ci_low"] is None else (s["ci_high"] - s["ci_low"]) / 2

    # what `dvc exp show` and `dvc metrics diff` show: the numbers a reader decides on, and nothing else
    write_json(paths.VERDICT_JSON, {
        "test_acc": acc["mean"], "test_acc_ci": half_width("test_acc"), "seeds": len(seeds),
        "verdict": verdict, "seeds_met": met, "test_loss": summary["test_loss"]["mean"],
        "train_s": summary["train_s"]["mean"], "lr_max": lr["lr_max"], "lr_min": lr["lr_min"],
        "corrupt_acc": summary["corrupt_acc"]["mean"], "corrupt_acc_ci": half_width("corrupt_acc"),
        "ece": summary["ece"]["mean"], "ece_ci": half_width("ece")})
    write_json(paths.AGGREGATE_JSON, {
        "seeds": seeds, "n": len(seeds), "confidence": confidence, **summary, "target": target,
        "target_met_seeds": met, "target_verdict": verdict, "verdict_line": verdict_line,
        **{family: {column.split(".", 1)[1]: summarize(table[column], confidence)
                    for column in table.columns if column.startswith(family + ".")}
           for family in ("per_class_acc", "corruption_acc")}})
    write_csv(paths.SEEDS_CSV, table.to_dict("records"))

    for target_csv, metric in ((paths.TEST_ACC_BAND, "test_acc"), (paths.TEST_LOSS_BAND, "test_loss")):
        band = history.groupby("epoch")[metric].agg(["mean", "min", "max"])
        write_csv(target_csv, band.reset_index().to_dict("records"))
    per_class = table.filter(like="per_class_acc.").agg(["mean", "min", "max"]).T
    per_class.index = per_class.index.str.removeprefix("per_class_acc.")
    write_csv(paths.PER_CLASS_BAND, per_class.rename_axis("class").reset_index().to_dict("records"))
    save_figure(training_curves(history), paths.CURVES_PNG)

    first = table.iloc[0]
    total, peak = schedule_steps(params["schedule"]["epochs"], params["schedule"]["peak_epoch"],
                                 int(first["steps_per_epoch"]))
    write_csv(paths.LR_SCHEDULE_CSV, [{"step": s, "lr": one_cycle_lr(s, total, peak, lr["lr_max"],
                                                                     lr["lr_min"])}
                                      for s in range(total)])
    print(verdict_line)


if __name__ == "__main__":
    run_stage(main)
