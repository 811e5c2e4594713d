"""How far a network's confidence can be trusted (scores.py): ECE, NLL, Brier score and temperature scaling,
for the evaluate stage (the clean test set) and the robustness stage (the corrupted ones)."""
