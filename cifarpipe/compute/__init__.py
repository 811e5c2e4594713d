"""Where and how the math runs: the device and precision (device.py), one GPU per process (gpus.py), and the
ranks of a run over several processes (ranks.py)."""
