"""The robustness stage's code: a model's accuracy and calibration on the corrupted sets, its picture."""
