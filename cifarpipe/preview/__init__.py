"""The preview stage's code: the network's layer table and the augmented samples."""
