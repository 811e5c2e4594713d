"""The seeds' two networks: the custom ResNet and the registry of model.name (networks.py), ResNet18
(resnet18.py)."""
