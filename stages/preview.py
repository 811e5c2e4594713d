"""Stage preview: what the network is and what it sees, before any training -> models/summary.txt (every
layer, its output shape and parameters) and plots/train_samples.png (augmented training images as the model
gets them).

    python -m stages.preview
"""
from cifarpipe.core import paths
from cifarpipe.core.artifacts import write_text
from cifarpipe.core.params import stage_params
from cifarpipe.core.stage import run_stage
from cifarpipe.data.augment import settings
from cifarpipe.data.dataset import load_splits
from cifarpipe.figures.common import save_figure
from cifarpipe.model.networks import build_model
from cifarpipe.preview.figures import samples_figure
from cifarpipe.preview.summary import model_summary


def main():
    params = stage_params("preview")
    cfg = params.preview
    write_text(paths.MODEL_SUMMARY, model_summary(build_model(params.model)))
    data, stats = load_splits(params.data, test=False)
    augment = settings(params.augment, stats["mean"])
    samples = samples_figure(data["x_train"], data["y_train"], data["classes"], augment, cfg.samples,
                             cfg.seed)
    save_figure(samples, paths.SAMPLES_PNG)
    print(f"wrote {paths.MODEL_SUMMARY} ({params.model.name}) and {cfg.samples} augmented samples to "
          f"{paths.SAMPLES_PNG}")


if __name__ == "__main__":
    run_stage(main)
