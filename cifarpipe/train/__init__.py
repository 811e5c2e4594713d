"""The train stage's code: the loop, torch.compile before it, a run over several processes; no drawing."""
