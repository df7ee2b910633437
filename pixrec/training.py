"""The one training loop: any model family's :class:`Task` (its module, its batches and loss, its
validation), AdamW, early stopping on validation NDCG@10 of full ranking (not on loss), the best
epoch kept and saved.

Under a torchrun process group (:mod:`pixrec.distributed`) the module is wrapped in
DistributedDataParallel and every step's global batch (the same slice of the same seeded permutation
as in one process) is dealt across ranks; validation and the early-stopping decision run on rank 0
and are broadcast. On CUDA the module and its input tensors live on the GPU; on CPU nothing changes.
"""

from __future__ import annotations

import contextlib
import copy
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from pixrec import distributed
from pixrec.config import SectionError, section
from pixrec.data.dataset import SplitData
from pixrec.numerics import deterministic_kernels

# cuBLAS is deterministic only with a fixed workspace; must be set before the first CUDA matmul
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")


@section
class TrainConfig:
    """A model's ``train`` section of params.yaml (``pair.train``, ``two_tower.train``)."""

    lr: float
    weight_decay: float
    batch_size: int  # samples per optimiser step: (user, item) pairs or users, as the model defines
    epochs: int
    patience: int  # epochs without a better validation NDCG@10 before stopping
    val_users: int  # seeded users whose validation item is ranked against every item, each epoch
    seed: int
    threads: int  # torch threads in all: each of ``nproc`` processes gets threads // nproc
    nproc: int  # processes on this machine (the train stage re-launches itself under torchrun)
    bf16: bool  # CUDA only: bf16 autocast of forward and loss; ignored on CPU
    # per-step decay of an exponential moving average of the weights, which is what is validated and
    # saved (Polyak & Juditsky 1992; 0 = off): one noisy epoch neither stops training nor is kept
    ema: float

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "patience", "val_users", "threads", "nproc"):
            if getattr(self, name) < 1:
                raise SectionError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 <= self.ema < 1.0:
            raise SectionError(f"ema: expected 0 <= ema < 1 (0 = off), got {self.ema}")


class Task(Protocol):
    """What the loop needs from a model family (see ``pixrec.models``)."""

    module: torch.nn.Module
    n_val_users: int  # users in the validation sample

    def n_samples(self, epoch: int) -> int:
        """Size of the epoch's sample space: the loop permutes ``range(n)`` and slices batches."""

    def loss(self, net: torch.nn.Module, epoch: int, idx: torch.Tensor, n_global: int,
             world: int) -> torch.Tensor:
        """The loss of this rank's samples ``idx`` of a global batch of ``n_global``, through ``net``
        (the module, or its DDP wrapper), scaled so DDP's average over ranks is the batch's loss."""

    def validate(self, module: torch.nn.Module) -> float:
        """Validation NDCG@10 of ``module`` (on the CPU, in eval mode)."""

    def save(self, module: torch.nn.Module, out_dir: Path, meta: dict) -> None:
        """Write the checkpoint and its meta.json into ``out_dir``."""


def rank_batches(perm: torch.Tensor, batch_size: int, rank: int, world: int
                 ) -> list[tuple[torch.Tensor, int]]:
    """This rank's part of every step: [(indices (~batch_size / world,), global batch size)].

    Step j's global batch is ``perm[j * batch_size : (j + 1) * batch_size]``, exactly the batch of
    a one-process run, dealt round-robin over the ranks; every rank gets the same number of steps
    (DDP hangs otherwise). A ragged last batch with fewer samples than ranks is dropped on all ranks
    (never with one process).
    """
    out = []
    for s in range(0, len(perm), batch_size):
        batch = perm[s : s + batch_size]
        if len(batch) >= world:
            out.append((batch[rank::world], len(batch)))
    return out


def validation_sample(data: SplitData, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded sample of users with a validation interaction: users (n,), their valid items (n,)."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 3]))
    pick = np.sort(rng.choice(len(data.valid), size=min(n, len(data.valid)), replace=False))
    return data.valid.users[pick], data.valid.items[pick]


def validation_ndcg(rec, data: SplitData, users: np.ndarray, targets: np.ndarray) -> float:
    """NDCG@10 of each user's valid item ranked against all items by ``rec``, training items masked."""
    from pixrec.evaluation.protocols import full_ranking_metrics

    return float(full_ranking_metrics(rec, users, targets, data.train_matrix, ks=[10])["ndcg@10"])


def train_step(net: torch.nn.Module, opt: torch.optim.Optimizer, loss_fn: Callable[[], torch.Tensor],
               forward_ctx: contextlib.AbstractContextManager | None = None) -> float:
    """One optimiser step; ``loss_fn`` runs the forward pass and the loss inside ``forward_ctx``
    (device, autocast), backward outside it. The benchmark times this same function."""
    with forward_ctx or contextlib.nullcontext():
        loss = loss_fn()
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return float(loss.detach())


@dataclass
class _Run:
    """Where a run is: the epochs' rows, the best epoch so far and its weights."""

    history: list
    patience: int
    best_ndcg: float = -1.0
    best_epoch: int = -1
    best_state: dict | None = None
    samples: int = 0
    seconds: float = 0.0


def train(task: Task, config: TrainConfig, out_dir: Path | None, live=None) -> dict:
    """Train ``task.module``, keep the best epoch by validation NDCG@10, save it to ``out_dir``.

    ``live``: a dvclive ``Live`` (or None) receiving the loss and validation curves. Under a process
    group every rank calls this; only rank 0 validates, logs and saves (others pass ``out_dir=None``).
    Returns the metrics (best epoch and its NDCG, epochs run); no timings, so reruns hash the same.
    """
    with deterministic_kernels():  # the same params give the same weights bit for bit
        return _train(task, config, out_dir, live)


def _train(task: Task, config: TrainConfig, out_dir: Path | None, live) -> dict:
    rank, world = distributed.rank(), distributed.world_size()
    if rank == 0 and out_dir is None:
        raise ValueError("train: rank 0 needs an out_dir for the checkpoint")
    dev = distributed.device(distributed.env().local_rank)
    module, net, validate = _place(task, config, dev, world)
    opt = torch.optim.AdamW(module.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    gen = torch.Generator().manual_seed(config.seed)
    run = _Run(history=[], patience=config.patience)
    untrained = validate(module)
    averaged, after_step = _averaging(module, config.ema)
    for epoch in range(config.epochs):
        t0 = time.perf_counter()
        module.train()
        loss = _epoch(task, net, opt, gen, epoch, config, rank, world, _forward_context(dev, config),
                      after_step)
        run.seconds += time.perf_counter() - t0
        ndcg = validate(averaged)
        if _record(run, averaged, epoch, loss, ndcg, time.perf_counter() - t0, rank, live):
            break
    metrics = {"best_epoch": run.best_epoch, "best_val_ndcg@10": run.best_ndcg,
               "untrained_val_ndcg@10": untrained, "epochs_run": len(run.history),
               "n_val_users": task.n_val_users, "world_size": world}
    if rank == 0:
        _finish(task, module, run, metrics, world, Path(out_dir))
    distributed.barrier()  # no rank leaves (and tears down the group) before the checkpoint is written
    return metrics


def _place(task: Task, config: TrainConfig, dev: torch.device, world: int):
    """Threads, seeds and devices: (module, the net steps run through, rank 0's validate())."""
    local = distributed.env().local_world_size if world > 1 else 1
    torch.set_num_threads(max(1, config.threads // local))  # this machine's ranks share its cores
    module = task.module
    if world > 1:  # own dropout masks per rank, else every rank would draw the same ones
        torch.manual_seed(int(np.random.SeedSequence([config.seed, distributed.rank()]).generate_state(1)[0]))
    cuda = dev.type == "cuda"
    # validation scores on the CPU (the scorers build CPU tensors): a CPU twin of the module
    cpu_module = copy.deepcopy(module) if cuda and distributed.rank() == 0 else module
    module.to(dev)
    net = module
    if world > 1:
        # static_graph: an ablated projection is unused on every step; DDP learns that once
        net = torch.nn.parallel.DistributedDataParallel(
            module, device_ids=[dev.index] if cuda else None, static_graph=True)

    def validate(source: torch.nn.Module) -> float:
        """Rank 0's validation NDCG@10 of ``source`` (the module or its average), broadcast so every
        rank takes the same early-stopping step."""
        ndcg = 0.0
        if distributed.rank() == 0:
            if cuda:
                cpu_module.load_state_dict(source.state_dict())
                source = cpu_module
            ndcg = task.validate(source.eval())
        return distributed.broadcast_floats([ndcg])[0]

    return module, net, validate


def _averaging(module: torch.nn.Module, decay: float
               ) -> tuple[torch.nn.Module, Callable[[], None] | None]:
    """(the weights validated and kept, the update to run after every step): ``module`` itself and no
    update when ``decay`` is 0, else torch's EMA of its parameters (buffers are set before training
    and copied as they are: an int64 buffer must not be averaged)."""
    if not decay:
        return module, None
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    averaged = AveragedModel(module, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=False)
    return averaged.module, lambda: averaged.update_parameters(module)


def _forward_context(dev: torch.device, config: TrainConfig) -> contextlib.AbstractContextManager:
    """CUDA: factory calls inside the model (dropout draws) land on the GPU; optional bf16."""
    if dev.type != "cuda":
        return contextlib.nullcontext()
    stack = contextlib.ExitStack()
    stack.enter_context(torch.device(dev))
    if config.bf16:
        stack.enter_context(torch.autocast("cuda", dtype=torch.bfloat16))
    return stack


def _epoch(task: Task, net, opt, gen: torch.Generator, epoch: int, config: TrainConfig, rank: int,
           world: int, ctx, after_step: Callable[[], None] | None) -> float:
    """One pass over a fresh permutation of the epoch's samples; the mean of the steps' losses."""
    perm = torch.randperm(task.n_samples(epoch), generator=gen)
    total, steps = 0.0, 0
    for idx, n_global in rank_batches(perm, config.batch_size, rank, world):
        loss = train_step(net, opt, lambda i=idx, n=n_global: task.loss(net, epoch, i, n, world), ctx)
        total += loss / world  # this rank's share of the global batch's loss
        steps += 1
        if after_step is not None:
            after_step()
    if world > 1:
        total = distributed.all_reduce_sum([total])[0]
    return total / max(steps, 1)


def _record(run: _Run, module, epoch: int, loss: float, ndcg: float, seconds: float, rank: int,
            live) -> bool:
    """Log the epoch, keep the best weights; True when early stopping says stop."""
    run.history.append({"epoch": epoch, "loss": loss, "val_ndcg@10": ndcg})
    if rank == 0:
        print(f"epoch {epoch:3d}  loss {loss:.4f}  val NDCG@10 {ndcg:.4f}  ({seconds:.1f}s)", flush=True)
    if live is not None:
        live.log_metric("train/loss", loss)
        live.log_metric("valid/ndcg@10", ndcg)
        live.next_step()
    if ndcg > run.best_ndcg:
        run.best_ndcg, run.best_epoch = ndcg, epoch
        run.best_state = copy.deepcopy(module.state_dict()) if rank == 0 else None
        return False
    return epoch - run.best_epoch >= run.patience


def _finish(task: Task, module, run: _Run, metrics: dict, world: int, out_dir: Path) -> None:
    """Rank 0: the best epoch's weights into ``out_dir`` with the run's history."""
    print(f"trained {len(run.history)} epochs in {run.seconds:.1f} s (validation excluded)", flush=True)
    module.load_state_dict(run.best_state)
    module.to("cpu")
    out_dir.mkdir(parents=True, exist_ok=True)
    # world_size only when > 1, so a one-process checkpoint hashes as before nproc existed
    stable = {k: v for k, v in metrics.items() if not (k == "world_size" and world == 1)}
    task.save(module, out_dir, {"metrics": stable, "history": run.history})
