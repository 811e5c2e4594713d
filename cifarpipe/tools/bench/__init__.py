"""`cifarpipe bench`: training speed beside the seeds' script (train_speed.py), where a step's time goes
(step_profile.py)."""
