"""The data set as the stages read it (dataset.py), its training augmentation (augment.py) and its batches on
the training device (loader.py)."""
