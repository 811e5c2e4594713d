"""The reference recipe's two networks: the custom ResNet and ResNet18 for CIFAR."""
