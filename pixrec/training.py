"""Training the fusion model: BCE on positives + that epoch's materialised negatives, AdamW,
large batches sliced from tensors already in memory, early stopping on validation NDCG@10 over
full ranking of a seeded user sample (not on loss).

Under a torchrun process group (:mod:`pixrec.distributed`) the model is wrapped in
DistributedDataParallel and every step's global batch (the same slice of the same seeded permutation
as in one process) is split across ranks, so the averaged gradient is that of the one-process batch
up to float summation order; validation and the early-stopping decision run on rank 0 and are
broadcast. On CUDA the model and feature tensors live on the GPU; on CPU nothing changes.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from pixrec import distributed as D
from pixrec.config import ConfigError, section
from pixrec.data.dataset import SplitData
from pixrec.errors import InputError
from pixrec.features import Embeddings, ItemFeatures, build_item_features, count_stats
from pixrec.model import FusionRecommender, ModelConfig, MultimodalRecommender, save_model

# cuBLAS is deterministic only with a fixed workspace; must be set before the first CUDA matmul
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")


@section
class TrainConfig:
    """The ``train`` section of params.yaml."""

    lr: float
    weight_decay: float
    batch_size: int
    epochs: int
    patience: int
    val_users: int
    seed: int
    threads: int  # torch threads in all: each of ``nproc`` processes gets threads // nproc
    nproc: int  # processes on this machine (the train stage re-launches itself under torchrun)
    bf16: bool  # CUDA only: bf16 autocast of forward and loss; ignored on CPU

    def __post_init__(self) -> None:
        if min(self.epochs, self.batch_size, self.patience, self.val_users, self.nproc, self.threads) < 1:
            raise ConfigError("train: epochs, batch_size, patience, val_users, threads and nproc "
                              "must be >= 1")


def rank_batches(perm: torch.Tensor, batch_size: int, rank: int, world: int
                 ) -> list[tuple[torch.Tensor, int]]:
    """This rank's part of every step: [(indices (~batch_size / world,), global batch size)].

    Step j's global batch is ``perm[j * batch_size : (j + 1) * batch_size]``, exactly the batch of
    a one-process run, dealt round-robin over the ranks; every rank gets the same number of steps
    (DDP hangs otherwise). A ragged last batch with fewer samples than ranks is dropped on all ranks
    (never with one process). The per-rank loss is weighted by ``world / global size``, so DDP's
    gradient average is the global batch mean even when shares differ by one sample.
    """
    out = []
    for s in range(0, len(perm), batch_size):
        batch = perm[s : s + batch_size]
        if len(batch) >= world:
            out.append((batch[rank::world], len(batch)))
    return out


def _to_device(feats: ItemFeatures, device: torch.device) -> ItemFeatures:
    """A copy of ``feats`` on ``device``: every per-batch gather then stays on the GPU."""
    moved = {f.name: getattr(feats, f.name) for f in dataclasses.fields(feats)}
    return ItemFeatures(**{k: None if v is None else v.to(device) for k, v in moved.items()})


def validation_sample(data: SplitData, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded sample of users with a validation interaction: users (n,), their valid items (n,)."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 3]))
    pick = np.sort(rng.choice(len(data.valid), size=min(n, len(data.valid)), replace=False))
    return data.valid.users[pick], data.valid.items[pick]


def validation_ndcg(
    model: MultimodalRecommender, feats, data: SplitData, users: np.ndarray, targets: np.ndarray
) -> float:
    """NDCG@10 of the valid item ranked against all items, training items masked."""
    from pixrec.evaluation.protocols import full_ranking

    rec = FusionRecommender(model, feats, name="fusion")
    result = full_ranking(rec, users, targets, data.train_matrix, ks=[10])
    model.train()
    return float(result["ndcg@10"])


def train(
    data: SplitData,
    embeddings: dict[str, Embeddings],
    negatives: np.ndarray,
    model_config: ModelConfig,
    config: TrainConfig,
    out_dir: Path | None,
    live=None,
) -> dict:
    """Train, keep the best epoch by validation NDCG@10, save it to ``out_dir``; returns metrics.

    ``negatives`` int32 (epochs, n_train, k) from the negative-sample stage; ``live`` a dvclive
    ``Live`` (or None) that receives the loss and validation curves. Under a process group every
    rank calls this; only rank 0 validates, logs and saves (the others pass ``out_dir=None``).
    """
    if config.epochs > negatives.shape[0]:
        raise InputError(
            f"train.epochs={config.epochs} but the negative-sample stage materialised only "
            f"{negatives.shape[0]} epochs: raise negatives.epochs"
        )
    if negatives.shape[1] != len(data.train):
        raise InputError("negatives do not match the training split; re-run negative-sample")
    deterministic = torch.are_deterministic_algorithms_enabled()
    # CPU index_put_(accumulate=True) — the backward of gathering per-item tokens — adds with
    # parallel atomics: run-to-run differences of 1e-4 in NDCG after a few epochs. The deterministic
    # (sort-based) kernels make the same params give the same weights bit for bit.
    torch.use_deterministic_algorithms(True)
    try:
        return _train(data, embeddings, negatives, model_config, config, out_dir, live)
    finally:
        torch.use_deterministic_algorithms(deterministic)


def train_step(net: torch.nn.Module, opt: torch.optim.Optimizer, users: torch.Tensor, items: torch.Tensor,
               labels: torch.Tensor, feats: ItemFeatures, sum_scale: float | None = None,
               forward_ctx: contextlib.AbstractContextManager | None = None) -> float:
    """One optimiser step on a batch (users, items, labels all (B,)) with item-token dropout; the loss.

    ``sum_scale`` (DDP): the loss is the batch sum times it, so with ``world / n_global`` DDP's
    average over ranks is the mean over the global batch. ``forward_ctx`` wraps the forward pass and
    loss only (device, autocast), not backward. The benchmark times this same function.
    """
    with forward_ctx or contextlib.nullcontext():
        logits = net(users, items, feats, item_dropout=True)
        if sum_scale is None:
            loss = F.binary_cross_entropy_with_logits(logits, labels)
        else:
            loss = F.binary_cross_entropy_with_logits(logits, labels, reduction="sum") * sum_scale
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return float(loss.detach())


def _train(data, embeddings, negatives, model_config, config, out_dir, live) -> dict:
    rank, world = D.rank(), D.world_size()
    main = rank == 0
    if main and out_dir is None:
        raise ValueError("train: rank 0 needs an out_dir for the checkpoint")
    place = D.env()
    dev = D.device(place.local_rank)
    local = place.local_world_size if world > 1 else 1
    torch.set_num_threads(max(1, config.threads // local))  # this machine's ranks share its cores
    torch.manual_seed(config.seed)  # dropout and token dropout draw from torch's default generator
    gen = torch.Generator().manual_seed(config.seed)

    stats = count_stats(data)
    feats = build_item_features(data, embeddings, stats)
    dims = {
        "n_users": data.n_users,
        "n_items": data.n_items,
        "n_tags": int(data.item_tags.max()),
        "n_count_features": int(feats.counts.shape[1]),
        "d_text": int(feats.text.shape[1]),
        "d_image": int(feats.image.shape[1]),
    }
    model = MultimodalRecommender(model_config, **dims)  # same init on every rank (same seed)
    if world > 1:  # own dropout masks per rank, else every rank would draw the same ones
        torch.manual_seed(int(np.random.SeedSequence([config.seed, rank]).generate_state(1)[0]))
    cuda = dev.type == "cuda"
    # validation scores on the CPU (the full-ranking scorer builds CPU tensors): a CPU twin of the model
    cpu_model = copy.deepcopy(model) if cuda and main else model
    train_feats = _to_device(feats, dev) if cuda else feats
    model.to(dev)
    net = model
    if world > 1:
        # static_graph: an ablated history projection is unused on every step; DDP learns that once
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[dev.index] if cuda else None, static_graph=True)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    val_users, val_items = validation_sample(data, config.val_users, config.seed)

    def validate() -> float:
        """Rank 0's validation NDCG@10, broadcast so every rank takes the same early-stopping step."""
        ndcg = 0.0
        if main:
            if cpu_model is not model:
                cpu_model.load_state_dict(model.state_dict())
            ndcg = validation_ndcg(cpu_model, feats, data, val_users, val_items)
        return D.broadcast_floats([ndcg])[0]

    pos_u = torch.from_numpy(data.train.users.astype(np.int64))
    pos_i = torch.from_numpy(data.train.items.astype(np.int64))
    k = negatives.shape[2]
    users_all = torch.cat([pos_u, pos_u.repeat_interleave(k)]).to(dev)
    labels = torch.cat([torch.ones(len(pos_u)), torch.zeros(len(pos_u) * k)]).to(dev)

    def on_device() -> contextlib.AbstractContextManager:
        """CUDA: factory calls inside the model (token-dropout draws) land on the GPU; optional bf16."""
        if not cuda:
            return contextlib.nullcontext()
        stack = contextlib.ExitStack()
        stack.enter_context(torch.device(dev))
        if config.bf16:
            stack.enter_context(torch.autocast("cuda", dtype=torch.bfloat16))
        return stack

    history: list[dict] = []
    best = {"ndcg@10": -1.0, "epoch": -1, "state": None}
    start = time.perf_counter()
    n_samples, train_time = 0, 0.0
    untrained = validate()
    for epoch in range(config.epochs):
        t0 = time.perf_counter()
        model.train()
        items_all = torch.cat([pos_i, torch.from_numpy(negatives[epoch].astype(np.int64)).ravel()]).to(dev)
        perm = torch.randperm(len(labels), generator=gen)
        total, batches, seen = 0.0, 0, 0
        for idx, n_global in rank_batches(perm, config.batch_size, rank, world):
            idx = idx.to(dev)
            loss = train_step(net, opt, users_all[idx], items_all[idx], labels[idx], train_feats,
                              world / n_global if world > 1 else None, on_device())
            total += loss / world  # this rank's share of the global batch's mean
            batches += 1
            seen += n_global
        if world > 1:
            total = D.all_reduce_sum([total])[0]
        train_time += time.perf_counter() - t0
        n_samples += seen
        ndcg = validate()
        row = {"epoch": epoch, "loss": total / batches, "val_ndcg@10": ndcg,
               "epoch_s": time.perf_counter() - t0}
        history.append(row)
        if main:
            print(f"epoch {epoch:3d}  loss {row['loss']:.4f}  val NDCG@10 {ndcg:.4f}  "
                  f"({row['epoch_s']:.1f}s)", flush=True)
        if live is not None:
            live.log_metric("train/loss", row["loss"])
            live.log_metric("valid/ndcg@10", ndcg)
            live.next_step()
        if ndcg > best["ndcg@10"]:
            state = copy.deepcopy(model.state_dict()) if main else None
            best = {"ndcg@10": ndcg, "epoch": epoch, "state": state}
        elif epoch - best["epoch"] >= config.patience:
            break

    metrics = {
        "best_epoch": best["epoch"],
        "best_val_ndcg@10": best["ndcg@10"],
        "untrained_val_ndcg@10": untrained,
        "epochs_run": len(history),
        "n_val_users": len(val_users),
        "world_size": world,
    }
    if main:  # timings are printed, never stored: same params, same outputs, bit for bit
        print(f"trained {n_samples:,} samples at {n_samples / max(train_time, 1e-9):,.0f} samples/s; "
              f"{time.perf_counter() - start:.1f} s with validation", flush=True)
        model.load_state_dict(best["state"])
        model.to("cpu")
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        # world_size only when > 1, so a one-process checkpoint hashes as before nproc existed
        timeless = [{k: v for k, v in row.items() if k != "epoch_s"} for row in history]
        stable = {k: v for k, v in metrics.items() if not (k == "world_size" and world == 1)}
        save_model(model, stats, dims, out_dir, {"metrics": stable, "history": timeless})
    D.barrier()  # no rank leaves (and tears down the group) before the checkpoint is written
    return metrics
