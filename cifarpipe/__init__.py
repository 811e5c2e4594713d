"""cifarpipe: a reproducible DVC pipeline that trains ResNets on CIFAR-10 with the one-cycle policy."""
