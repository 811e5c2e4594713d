"""The train stage's code: the training loop (loop.py), torch.compile before it (compile.py), one run over
several processes (distributed.py). Nothing here draws: a picture lives in the folder of the stage that shows
it, so restyling one never retrains a model (tests/test_reruns.py)."""
