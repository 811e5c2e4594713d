"""The evaluate stage's code: the numbers read off the test predictions, and its pictures."""
