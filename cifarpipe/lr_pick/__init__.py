"""The lr_pick stage's code: the rules that read LRMAX and LRMIN off the range test, and its picture."""
