"""The gradcam stage's code: the class activation maps and their pictures."""
