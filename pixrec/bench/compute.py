"""Compute-bound figures at the workspace's real sizes: matmul rate, training samples/s, full-ranking
users/s of a dot-product model, exact fusion-model pairs/s."""

from __future__ import annotations

import time

import numpy as np
import scipy.sparse as sp
import torch

from pixrec.evaluation.protocols import rank_full
from pixrec.serve.topk import top_k_unseen
from pixrec.training import train_step


def matmul_gflops(n: int = 2048, repeats: int = 5) -> float:
    """Best fp32 ``n × n`` matmul rate in GFLOP/s: the machine's ceiling for dense model work."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b  # warm-up
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return round(2 * n**3 / best / 1e9, 1)


def training_throughput(task, batch_size: int, steps: int, lr: float) -> dict:
    """Samples/s of the step the train stage runs for ``task`` (a :class:`pixrec.training.Task`:
    its batches, forward, loss, backward, AdamW), deterministic kernels on as there, over ``steps``
    batches of epoch 0. A sample is what the model's ``train.batch_size`` counts (pairs or users)."""
    module = task.module
    opt = torch.optim.AdamW(module.parameters(), lr=lr)
    n = task.n_samples(0)
    n_batches = steps + 1  # a small dataset is cycled through: every timed step is a full batch
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(0)).repeat(
        -(-n_batches * batch_size // n))
    was = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    module.train()
    try:
        t0, done = None, 0
        for b in range(n_batches):
            idx = perm[b * batch_size : (b + 1) * batch_size]
            train_step(module, opt, lambda i=idx: task.loss(module, 0, i, len(i), 1))
            if b == 0:  # the first step warms up allocators and kernels: not timed
                t0 = time.perf_counter()
            else:
                done += len(idx)
        dt = time.perf_counter() - t0
    finally:
        torch.use_deterministic_algorithms(was)
    return {"samples_per_s": round(done / dt, 1) if done else None, "batch_size": batch_size,
            "timed_steps": n_batches - 1}


class DotProduct:
    """The cheapest full-ranking model: score = user factors · item factors (one sgemm per block)."""

    name = "dot"

    def __init__(self, user_f: np.ndarray, item_f: np.ndarray) -> None:
        self.u, self.v = user_f, item_f  # (U, d), (I, d)
        self.n_items = item_f.shape[0]

    def score(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return np.einsum("bd,bcd->bc", self.u[users], self.v[items])  # (B, C)

    def score_all(self, users: np.ndarray) -> np.ndarray:
        return self.u[users] @ self.v.T  # (B, I)


def ranking_throughput(seen: sp.csr_matrix, targets: np.ndarray, dim: int = 64, batch_users: int = 1024,
                       list_k: int = 10, seed: int = 0) -> dict:
    """users/s of :func:`rank_full` (the evaluator's full protocol, top-10 lists on) for a
    dot-product model of width ``dim`` over every user of ``seen`` (the real masks)."""
    rng = np.random.default_rng(seed)
    n_users, n_items = seen.shape
    rec = DotProduct(rng.standard_normal((n_users, dim), dtype=np.float32),
                     rng.standard_normal((n_items, dim), dtype=np.float32))
    t = time.perf_counter()
    rank_full(rec, np.arange(n_users), targets, seen, batch_users=batch_users, list_k=list_k)
    dt = time.perf_counter() - t
    return {"users": n_users, "items": n_items, "dim": dim, "seconds": round(dt, 2),
            "users_per_s": round(n_users / dt, 1), "batch_users": batch_users}


def recommend_throughput(seen: sp.csr_matrix, k: int, batch_users: int, dim: int = 64, seed: int = 0) -> dict:
    """users/s of the recommend stage's exact top-k (:func:`pixrec.serve.topk.top_k_unseen`, seen items
    masked) for a random dot-product model of width ``dim`` over every user of ``seen``."""
    rng = np.random.default_rng(seed)
    n_users, n_items = seen.shape
    rec = DotProduct(rng.standard_normal((n_users, dim), dtype=np.float32),
                     rng.standard_normal((n_items, dim), dtype=np.float32))
    t = time.perf_counter()
    top_k_unseen(rec, np.arange(n_users), k, seen, batch_users)
    dt = time.perf_counter() - t
    return {"users": n_users, "items": n_items, "dim": dim, "k": k, "batch_users": batch_users,
            "seconds": round(dt, 2), "users_per_s": round(n_users / dt, 1),
            "threads": torch.get_num_threads()}


def fusion_throughput(rec, users: np.ndarray, gflops: float | None = None) -> dict:
    """Exact fusion scoring (``score_all``: every item for each user) in pairs/s, with the FLOPs of
    one pair counted by torch's FLOP counter and the share of the matmul ceiling this reaches."""
    from torch.utils.flop_counter import FlopCounterMode

    n = 256
    u = torch.zeros(n, dtype=torch.long)
    i = torch.arange(n) % rec.n_items
    with torch.inference_mode(), FlopCounterMode(display=False) as fc:
        rec.model.fuse(rec.model.user_tokens(rec.feats, u), rec.item_table[i])
    flops = fc.get_total_flops() / n
    rec.score_all(users[:1])  # warm-up
    t = time.perf_counter()
    rec.score_all(users)
    dt = time.perf_counter() - t
    pairs = len(users) * rec.n_items
    out = {"users": len(users), "pairs": pairs, "seconds": round(dt, 2),
           "pairs_per_s": round(pairs / dt, 1), "mflop_per_pair": round(flops / 1e6, 4)}
    if gflops:
        out["matmul_share"] = round(pairs / dt * flops / (gflops * 1e9), 3)
    return out
