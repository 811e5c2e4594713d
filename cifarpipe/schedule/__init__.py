"""The one-cycle LR of the `schedule` params group."""
