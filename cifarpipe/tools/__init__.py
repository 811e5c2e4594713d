"""What a user runs beside `dvc`, never a stage: the `cifarpipe` command and what it calls."""
