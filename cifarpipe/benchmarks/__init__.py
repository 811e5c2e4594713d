"""Speed benchmarks, run beside the seed peer on one machine: `cifarpipe bench speed`, `cifarpipe bench profile`."""
