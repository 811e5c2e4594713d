"""The lr_find stage's code: the LR range test."""
