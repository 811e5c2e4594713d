"""How far a network's confidence can be trusted: ECE, NLL, Brier score, temperature scaling."""
