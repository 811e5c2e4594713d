"""What every picture shares: the headless backend, atomic PNG files, image grids."""
