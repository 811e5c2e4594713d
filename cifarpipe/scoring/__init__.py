"""A model's logits over a loader and the loss and accuracy they score (training and evaluate)."""
