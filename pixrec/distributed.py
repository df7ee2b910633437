"""torch.distributed helpers for training under torchrun, and a no-op path for one process.

torchrun sets RANK / WORLD_SIZE / LOCAL_RANK / LOCAL_WORLD_SIZE (and the rendezvous address) in
each worker's env; without them (or with WORLD_SIZE=1) every helper here is a no-op, so the library
code that calls them runs unchanged in a plain ``python -m stages.train``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistEnv:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1  # processes on this machine: they share its cores

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def launched_by_torchrun() -> bool:
    """True inside a torchrun worker (even a world of one): the stage must not re-launch itself."""
    return "WORLD_SIZE" in os.environ


def env() -> DistEnv:
    """This process's place in the job, from torchrun's env (a world of one when unset)."""
    get = os.environ.get
    world = int(get("WORLD_SIZE", 1))
    return DistEnv(int(get("RANK", 0)), world, int(get("LOCAL_RANK", 0)), int(get("LOCAL_WORLD_SIZE", world)))


def device(local_rank: int = 0) -> torch.device:
    """One GPU per local rank when CUDA is present, else the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    return torch.device("cpu")


def backend() -> str:
    """nccl for GPUs, gloo (TCP) for CPU processes."""
    return "nccl" if torch.cuda.is_available() else "gloo"


def active() -> bool:
    """A process group of more than one process is running."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if active() else 0


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def is_main() -> bool:
    return rank() == 0


def init() -> DistEnv:
    """Join torchrun's process group when WORLD_SIZE > 1; returns this process's place either way."""
    e = env()
    if e.world_size > 1 and not dist.is_initialized():
        if torch.cuda.is_available():
            torch.cuda.set_device(device(e.local_rank))  # nccl binds each rank to its own GPU
        dist.init_process_group(backend=backend())  # rendezvous from MASTER_ADDR/PORT (env://)
    return e


def barrier() -> None:
    if active():
        dist.barrier()


def cleanup() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


@contextmanager
def process_group() -> Iterator[DistEnv]:
    """``init()`` on entry, ``cleanup()`` on exit (also on error, so no rank hangs at exit)."""
    try:
        yield init()
    finally:
        cleanup()


def _carrier(values: list[float]) -> torch.Tensor:
    """float64 tensor on the device the backend talks to (nccl only moves CUDA tensors)."""
    on = torch.device("cuda", torch.cuda.current_device()) if backend() == "nccl" else torch.device("cpu")
    return torch.tensor(values, dtype=torch.float64, device=on)


def broadcast_floats(values: list[float], src: int = 0) -> list[float]:
    """Rank ``src``'s ``values`` on every rank (the others pass placeholders of the same length)."""
    if not active():
        return list(values)
    t = _carrier(values)
    dist.broadcast(t, src=src)
    return t.tolist()


def all_reduce_sum(values: list[float]) -> list[float]:
    """Element-wise sum of ``values`` over all ranks."""
    if not active():
        return list(values)
    t = _carrier(values)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.tolist()
