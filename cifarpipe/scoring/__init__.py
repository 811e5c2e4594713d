"""A model's logits over a loader, and the loss and accuracy they score (predict.py): the per-epoch test pass
of training and the evaluate stage share it."""
