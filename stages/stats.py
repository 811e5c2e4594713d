"""Stage stats: per-channel mean and std of the training images -> data/stats.json.

Every later stage normalises with these numbers, so no CIFAR constants are hard-coded anywhere.

    python -m stages.stats
"""
from cifarpipe.core import paths
from cifarpipe.core.artifacts import write_json
from cifarpipe.core.params import stage_params
from cifarpipe.core.stage import run_stage
from cifarpipe.data.dataset import channel_stats, load_dataset


def main():
    params = stage_params("stats")
    data = load_dataset(paths.DATASET, train_subset=params.data.train_subset)
    stats = channel_stats(data["x_train"])
    write_json(paths.STATS, stats)
    print(f"wrote {paths.STATS}: mean {stats['mean']} std {stats['std']} over {stats['images']} images")


if __name__ == "__main__":
    run_stage(main)
