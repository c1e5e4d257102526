"""Filling the feature cache past one process: `torchrun --nproc-per-node N -m arlib cache ...`.

Feature extraction is embarrassingly parallel: every rank takes every world_size-th clip of the same
sorted list and writes its share into the shared cache (entries are written atomically and each clip has
its own file lock, so ranks never clash). Rank 0 shows progress and prints the summary gathered from all
ranks; training then reads the whole cache. Multi-node works the same (`torchrun --nnodes ...`) with a
cache folder every node can see. Without torchrun's variables this is one process and nothing changes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Rank:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def share(self, items: list) -> list:
        """This rank's clips: interleaved, so long and short clips spread evenly over the ranks."""
        return items[self.rank :: self.world_size]


def launched_rank() -> Rank:
    """Rank and world size from torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK); 0 of 1 without it."""
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if world <= 1:
        return Rank()
    return Rank(int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0")))


def init(rank: Rank) -> None:
    """Join the process group so ranks can gather their results.

    gloo whatever the device: ranks exchange only a few small Python objects (counts, failed clips), which
    gloo moves over TCP on the CPU; NCCL would need each rank pinned to its GPU first and buys nothing here.
    """
    import torch.distributed as dist

    if rank.world_size > 1 and not dist.is_initialized():
        dist.init_process_group("gloo")


def gather(rank: Rank, obj) -> list:
    """Every rank's `obj`, in rank order (on every rank); [obj] for one process."""
    if rank.world_size <= 1:
        return [obj]
    import torch.distributed as dist

    out = [None] * rank.world_size
    dist.all_gather_object(out, obj)
    return out


def finish(rank: Rank) -> None:
    if rank.world_size > 1:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()
