"""The gradcam stage's code: the class activation maps (cams.py) and their pictures (figures.py)."""
