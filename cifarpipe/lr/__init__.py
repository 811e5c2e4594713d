"""The LR range test (stage lr_find) and the rules that read LRMAX and LRMIN off it (stage lr_pick)."""
