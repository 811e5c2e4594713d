"""What every picture shares (common.py): the headless backend, atomic PNG files, image grids."""
