"""The export stage's code: the model as ONNX and torch.export files, and what reads them back (predict)."""
