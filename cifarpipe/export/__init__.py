"""The export stage's code: the first seed's model as ONNX and as a torch.export program, checked against
PyTorch (files.py); and what reads them back to classify images (predictor.py, used by `cifarpipe
predict`)."""
