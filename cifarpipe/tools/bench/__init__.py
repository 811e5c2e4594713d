"""`cifarpipe bench`: training speed beside a peer script, where a step's time goes, inference speed."""
