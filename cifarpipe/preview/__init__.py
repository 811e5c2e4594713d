"""The preview stage's code: the network's layer table (summary.py) and the augmented samples (figures.py)."""
