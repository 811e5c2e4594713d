"""The aggregate stage's code: reading every seed's results (results.py), telling a change from seed noise
(noise.py, which `cifarpipe report` also uses), and the curves over the seeds (figures.py)."""
