"""The optimizers of the `optim` params group."""
