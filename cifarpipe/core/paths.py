"""Where each stage reads and writes: the paths dvc.yaml declares (tests/test_dvc_yaml.py holds them equal).

A per-seed path holds `{seed}`, filled by `per_seed`, where dvc.yaml writes ${item.seed}."""
DATASET = "data/cifar10.npz"
STATS = "data/stats.json"
MODEL_SUMMARY = "models/summary.txt"
SAMPLES_PNG = "plots/train_samples.png"
LR_FIND_CSV = "plots/lr_find.csv"  # the range test's curve
LR_FIND_JSON = "metrics/lr_find.json"  # how it ended
LR_PICK_JSON = "metrics/lr_pick.json"  # LRMAX and LRMIN, read off the curve or from optim.lr
LR_PICK_PNG = "plots/lr_pick.png"  # the curve with LRMAX and LRMIN marked

# one per seed
MODEL = "models/seed{seed}/model.pt"
# not a DVC output: DVC would delete it before a rerun could resume
CHECKPOINT = ".checkpoints/train_seed{seed}.pt"
# dvclive: metrics.json (summary), plots/metrics/<name>.tsv (per epoch)
TRAIN_LIVE = "dvclive/train/seed{seed}"
TRAIN_JSON = "dvclive/train/seed{seed}/metrics.json"
TRAIN_HISTORY = "dvclive/train/seed{seed}/plots/metrics"
EVALUATE_LIVE = "dvclive/evaluate/seed{seed}"  # dvclive: metrics.json, plots/sklearn/confusion.json
EVALUATE_JSON = "dvclive/evaluate/seed{seed}/metrics.json"
PREDICTIONS = "models/seed{seed}/test_predictions.npz"
EVALUATE_PLOTS = "plots/evaluate/seed{seed}"
CONFUSION_PNG = "plots/evaluate/seed{seed}/confusion.png"
PER_CLASS_PNG = "plots/evaluate/seed{seed}/per_class.png"
MISCLASSIFIED_PNG = "plots/evaluate/seed{seed}/misclassified.png"

# the corrupted test sets, once; each seed's model scored on them
CORRUPTED = "data/corrupted.npz"
ROBUSTNESS_RUNS = "metrics/robustness"  # every seed's file: the aggregate reads those of train.seeds
ROBUSTNESS_JSON = "metrics/robustness/seed{seed}.json"  # accuracy per corruption and severity, per class, ECE
# accuracy by severity: mean, min, max over the corruptions
ROBUSTNESS_CSV = "plots/robustness/seed{seed}.csv"
HEATMAP_PNG = "plots/robustness/seed{seed}.png"  # accuracy, corruption x severity
CALIBRATION = "models/seed{seed}/calibration.json"  # the temperature fitted on the test set, for later use
RELIABILITY = "dvclive/evaluate/seed{seed}/plots/custom/reliability.json"  # per confidence bin, for dvc plots
RELIABILITY_PNG = "plots/evaluate/seed{seed}/reliability.png"

# the first seed's model, exported (models/export/: model.onnx, model.pt2, model.json) and checked
EXPORT_DIR = "models/export"
EXPORT_ONNX = "models/export/model.onnx"
EXPORT_PROGRAM = "models/export/model.pt2"
EXPORT_META = "models/export/model.json"
EXPORT_JSON = "metrics/export.json"  # how far each exported file's logits are from PyTorch's, on the test set

# the first seed's model, explained
GRADCAM_DIR = "plots/gradcam"

# over the seeds
TRAIN_RUNS = "dvclive/train"  # every seed's folder: the aggregate stage reads those of train.seeds
EVALUATE_RUNS = "dvclive/evaluate"
# the one DVC metrics file: what `dvc exp show` and `dvc metrics diff` show
VERDICT_JSON = "metrics/verdict.json"
AGGREGATE_JSON = "metrics/aggregate.json"  # every summary over the seeds, per class included
SEEDS_CSV = "metrics/seeds.csv"  # one row per seed: what `cifarpipe report` compares between two revisions
BANDS = "plots/seeds"  # mean, min and max over the seeds, for `dvc plots`:
TEST_ACC_BAND = "plots/seeds/test_acc.csv"  # per epoch
TEST_LOSS_BAND = "plots/seeds/test_loss.csv"  # per epoch
PER_CLASS_BAND = "plots/seeds/per_class.csv"  # per class
CURVES_PNG = "plots/curves.png"
LR_SCHEDULE_CSV = "plots/lr_schedule.csv"


def per_seed(path: str, seed: int) -> str:
    return path.format(seed=seed)
