"""Stage scripts, one per DVC stage, each run as `python -m stages.NAME` from the repository root."""
