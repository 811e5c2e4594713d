"""The cluster code: `cifarpipe slurm`, a grid and its seeds on SLURM, one clone per job (docs/scaling.md)."""
