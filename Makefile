# Named recipes and reports. Each target is a plain DVC or cifarpipe command you can also type yourself.
# ARGS adds or overrides params, e.g. make reference-resnet18 ARGS="-S data.train_subset=5000"
ARGS ?=
.PHONY: repro test test-fast quick-look reference-custom-resnet reference-resnet18 lr-grid report pull

repro:
	dvc repro

test:
	python -m pytest -q -n auto --durations=25

# The inner loop: everything but the tests that run the real dvc repro or train for long (under 2 minutes)
test-fast:
	python -m pytest -q -n auto -m "not slow"

# The whole pipeline in minutes on a CPU (quick-look.yaml), as an experiment; add the data, e.g.
# make quick-look ARGS="-S data.url=file://$$HOME/cifar10-proxy/cifar-10-python.tar.gz -S data.md5=..."
quick-look:
	dvc exp run -n quick-look $$(cifarpipe overrides quick-look.yaml) $(ARGS)

# The reference recipes, whatever the workspace holds (after a quick look, say): every key of the committed
# params.yaml that defines a recipe is set (cifarpipe overrides --shipped), then the recipe's own file.
# The custom-ResNet recipe, params.yaml as shipped: Adam, 24 epochs, peak at 5, cutout 8x8, LRMAX from the LR finder
reference-custom-resnet:
	dvc exp run -n reference-custom-resnet $$(cifarpipe overrides --shipped) $(ARGS)

# The ResNet18 recipe (resnet18.yaml): 20 epochs, RandomCrop(32, padding=4) and cutout 16x16
reference-resnet18:
	dvc exp run -n reference-resnet18 $$(cifarpipe overrides --shipped resnet18.yaml) $(ARGS)

# A grid of LRMAX values, queued then run one after another
lr-grid:
	dvc exp run --queue -S 'optim.lr=0.01,0.02,0.05' $(ARGS)
	dvc queue start --jobs 1
	dvc queue status

# Markdown report against the base branch (BASE=main by default), for a pull request
BASE ?= main
report:
	cifarpipe report --base $(BASE) --out report.md

# Fetch this commit's outputs from the DVC remote; when they are not there, say how to get them
pull:
	@dvc pull || { echo "The outputs of this commit are not on the DVC remote (nobody pushed them yet)." \
	    "Build them here with 'dvc repro' (then 'dvc push' to share them), or ask whoever ran it to 'dvc push'." >&2; exit 1; }
