"""Distributed-training helpers: the process group under torchrun, barriers, all-reduced means."""

from __future__ import annotations

import os

import torch

__all__ = ["init_from_env", "barrier", "mean_over_ranks"]


def init_from_env() -> tuple[int, int, int]:
    """(rank, world size, local rank); initialises the process group when started by torchrun (NCCL on CUDA,
    gloo on the CPU or with ``D2HNET_BACKEND=gloo``)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1, 0
    import torch.distributed as dist

    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() and os.environ.get("D2HNET_BACKEND", "") != "gloo" else "gloo"
        dist.init_process_group(backend=backend)
    return dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0"))


def barrier(world: int) -> None:
    """Wait for every rank (nothing to do in a single process)."""
    if world > 1:
        import torch.distributed as dist

        dist.barrier()


def mean_over_ranks(value: float, world: int, device: torch.device) -> float:
    """``value`` averaged over the ranks (a collective: every rank must call it)."""
    if world == 1:
        return value
    import torch.distributed as dist

    t = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return float(t) / world
