"""The process group every trainer joins under `torchrun` / `accelerate launch`, and the few collectives it uses.

The launcher describes the job in the environment (WORLD_SIZE, RANK, LOCAL_RANK, MASTER_ADDR, MASTER_PORT);
`init_distributed()` joins it (gloo on CPU, nccl on GPU) and is a no-op for a single process, so the same
script runs alone on a laptop CPU. The helpers below work in both cases.

    rank, world_size, local_rank = init_distributed()
    metrics = all_reduce_sum({"correct": correct, "count": count})  # totals over every rank
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist

from reasonlab.errors import UserError

__all__ = [
    "all_reduce_max",
    "all_reduce_sum",
    "barrier",
    "init_distributed",
    "is_main_process",
]


def init_distributed(backend: str | None = None) -> tuple[int, int, int]:
    """(rank, world_size, local_rank): join the launcher's process group (gloo on CPU, nccl on GPU); (0, 1, 0) alone.

    Safe to call more than once. On GPU it makes `cuda:LOCAL_RANK` the current device before joining."""
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if _active():
        return dist.get_rank(), dist.get_world_size(), local_rank
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return 0, 1, 0
    missing = [name for name in ("RANK", "MASTER_ADDR", "MASTER_PORT") if name not in os.environ]
    if missing:
        raise UserError(
            f"WORLD_SIZE={world_size} but {', '.join(missing)} not set: start the script with torchrun or "
            "accelerate launch, or unset WORLD_SIZE to run one process"
        )
    backend = backend or ("nccl" if torch.cuda.is_available() else "gloo")
    if backend == "nccl":
        torch.cuda.set_device(local_rank)
    dist.init_process_group(backend=backend)
    return dist.get_rank(), dist.get_world_size(), local_rank


def is_main_process() -> bool:
    """True on rank 0 (and in a single process): the process that writes logs and checkpoints."""
    return not _active() or dist.get_rank() == 0


def barrier() -> None:
    """Wait for every rank; nothing to wait for in a single process."""
    if _active():
        dist.barrier()


def all_reduce_sum(values: dict[str, float]) -> dict[str, float]:
    """Each value summed over the ranks (one collective for the whole dict)."""
    keys = sorted(values)  # every rank must lay out the same vector
    return dict(zip(keys, _reduce([values[k] for k in keys], "sum"), strict=True))


def all_reduce_max(values: dict[str, float]) -> dict[str, float]:
    """Each value's maximum over the ranks."""
    keys = sorted(values)
    return dict(zip(keys, _reduce([values[k] for k in keys], "max"), strict=True))


def _active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def _reduce(values: list[float], op: str) -> list[float]:
    """One all-reduce of a float64 vector (on the current GPU under nccl); the values themselves when alone."""
    if not _active():
        return [float(v) for v in values]
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else None
    vector = torch.tensor([float(v) for v in values], dtype=torch.float64, device=device)
    dist.all_reduce(vector, op=dist.ReduceOp.SUM if op == "sum" else dist.ReduceOp.MAX)
    return vector.tolist()
