"""The optimizers of the `optim` params group (optimizers.py)."""
