"""Where and how the math runs: device and precision, one GPU per process, the ranks of a run."""
