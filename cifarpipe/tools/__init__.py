"""What a user runs beside `dvc`, never a stage: the `cifarpipe` command (cli.py) and what it calls."""
