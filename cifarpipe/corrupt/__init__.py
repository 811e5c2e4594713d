"""The corrupt stage's code: the test images corrupted in the manner of CIFAR-10-C."""
