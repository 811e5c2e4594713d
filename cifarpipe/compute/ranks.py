"""This process's place in a training run: rank K of N processes (one process is rank 0 of 1).

train/distributed.py starts and joins the processes of a run over several GPUs; what the training loop and the
loader need of it is here: which slice of each batch this rank trains on, and sums over the ranks.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Ranks:
    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        """Rank 0: the one that shows progress and writes outputs and checkpoints."""
        return self.rank == 0

    def sum(self, values: torch.Tensor) -> torch.Tensor:
        """`values` summed over every rank (no-op for one process)."""
        if self.world > 1:
            dist.all_reduce(values, op=dist.ReduceOp.SUM)
        return values

    def max(self, values: torch.Tensor) -> torch.Tensor:
        if self.world > 1:
            dist.all_reduce(values, op=dist.ReduceOp.MAX)
        return values


SINGLE = Ranks()
