"""The aggregate stage's code: every seed's results read back, the verdict, seed noise, the curves."""
