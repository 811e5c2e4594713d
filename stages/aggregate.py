"""Stage aggregate: what the seeds of train.seeds say together -> metrics/verdict.json (the DVC metrics),
metrics/aggregate.json, metrics/seeds.csv, the curves over the seeds and the LR schedule.

The verdict is met only when the interval of the mean clears evaluate.target (docs/noise.md).

    python -m stages.aggregate
"""
from cifarpipe.aggregate.figures import training_curves
from cifarpipe.aggregate.results import class_band, epoch_band, histories, seed_table
from cifarpipe.aggregate.verdict import judge
from cifarpipe.core import paths
from cifarpipe.core.artifacts import read_json, write_csv, write_json
from cifarpipe.core.params import stage_params
from cifarpipe.core.stage import run_stage
from cifarpipe.figures.common import save_figure
from cifarpipe.train.one_cycle import schedule_rows


def main():
    params = stage_params("aggregate")
    table = seed_table(params.train.seeds)
    history = histories(params.train.seeds)
    lr = read_json(paths.LR_PICK_JSON)
    verdict = judge(table, params.evaluate.target, params.noise.confidence)

    write_json(paths.VERDICT_JSON, verdict.metrics(lr))
    write_json(paths.AGGREGATE_JSON, verdict.record())
    write_csv(paths.SEEDS_CSV, table.to_dict("records"))
    write_csv(paths.TEST_ACC_BAND, epoch_band(history, "test_acc"))
    write_csv(paths.TEST_LOSS_BAND, epoch_band(history, "test_loss"))
    write_csv(paths.PER_CLASS_BAND, class_band(table))
    save_figure(training_curves(history), paths.CURVES_PNG)
    steps_per_epoch = int(table["steps_per_epoch"].iloc[0])
    write_csv(paths.LR_SCHEDULE_CSV, schedule_rows(params.schedule.epochs, params.schedule.peak_epoch,
                                                   steps_per_epoch, lr["lr_max"], lr["lr_min"]))
    print(verdict.line)


if __name__ == "__main__":
    run_stage(main)
