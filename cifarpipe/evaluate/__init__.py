"""The evaluate stage's code: the numbers read off the test predictions (metrics.py) and its pictures
(figures.py)."""
