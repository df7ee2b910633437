"""Training the fusion model: BCE on positives + that epoch's materialised negatives, AdamW,
large batches sliced from tensors already in memory, early stopping on validation NDCG@10 over
full ranking of a seeded user sample (not on loss)."""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from pixrec.data.dataset import SplitData
from pixrec.features import Embeddings, build_item_features, count_stats
from pixrec.model import FusionRecommender, ModelConfig, MultimodalRecommender, save_model


@dataclass(frozen=True)
class TrainConfig:
    lr: float = 2e-3
    weight_decay: float = 1e-4
    batch_size: int = 2048
    epochs: int = 15
    patience: int = 3
    val_users: int = 1000
    seed: int = 13
    threads: int = 2

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.patience < 1 or self.val_users < 1:
            raise ValueError("train: epochs, batch_size, patience and val_users must be >= 1")


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
    out_dir: Path,
    live=None,
) -> dict:
    """Train, keep the best epoch by validation NDCG@10, save it to ``out_dir``; returns metrics.

    ``negatives`` int32 (epochs, n_train, k) from the negative-sample stage; ``live`` a dvclive
    ``Live`` (or None) that receives the loss and validation curves.
    """
    if config.epochs > negatives.shape[0]:
        raise ValueError(
            f"train.epochs={config.epochs} but the negative-sample stage materialised only "
            f"{negatives.shape[0]} epochs: raise negatives.epochs"
        )
    if negatives.shape[1] != len(data.train):
        raise ValueError("negatives do not match the training split; re-run negative-sample")
    deterministic = torch.are_deterministic_algorithms_enabled()
    # CPU index_put_(accumulate=True) — the backward of gathering per-item tokens — adds with
    # parallel atomics: run-to-run differences of 1e-4 in NDCG after a few epochs. The deterministic
    # (sort-based) kernels make the same params give the same weights bit for bit.
    torch.use_deterministic_algorithms(True)
    try:
        return _train(data, embeddings, negatives, model_config, config, out_dir, live)
    finally:
        torch.use_deterministic_algorithms(deterministic)


def _train(data, embeddings, negatives, model_config, config, out_dir, live) -> dict:
    torch.set_num_threads(config.threads)
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
    model = MultimodalRecommender(model_config, **dims)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    val_users, val_items = validation_sample(data, config.val_users, config.seed)

    pos_u = torch.from_numpy(data.train.users.astype(np.int64))
    pos_i = torch.from_numpy(data.train.items.astype(np.int64))
    k = negatives.shape[2]
    users_all = torch.cat([pos_u, pos_u.repeat_interleave(k)])
    labels = torch.cat([torch.ones(len(pos_u)), torch.zeros(len(pos_u) * k)])

    history: list[dict] = []
    best = {"ndcg@10": -1.0, "epoch": -1, "state": None}
    start = time.perf_counter()
    n_samples, train_time = 0, 0.0
    untrained = validation_ndcg(model, feats, data, val_users, val_items)
    for epoch in range(config.epochs):
        t0 = time.perf_counter()
        model.train()
        items_all = torch.cat([pos_i, torch.from_numpy(negatives[epoch].astype(np.int64)).ravel()])
        perm = torch.randperm(len(labels), generator=gen)
        total, batches = 0.0, 0
        for s in range(0, len(perm), config.batch_size):
            idx = perm[s : s + config.batch_size]
            logits = model(users_all[idx], items_all[idx], feats, item_dropout=True)
            loss = F.binary_cross_entropy_with_logits(logits, labels[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach())
            batches += 1
        train_time += time.perf_counter() - t0
        n_samples += len(perm)
        ndcg = validation_ndcg(model, feats, data, val_users, val_items)
        row = {"epoch": epoch, "loss": total / batches, "val_ndcg@10": ndcg,
               "epoch_s": time.perf_counter() - t0}
        history.append(row)
        print(f"epoch {epoch:3d}  loss {row['loss']:.4f}  val NDCG@10 {ndcg:.4f}  "
              f"({row['epoch_s']:.1f}s)", flush=True)
        if live is not None:
            live.log_metric("train/loss", row["loss"])
            live.log_metric("valid/ndcg@10", ndcg)
            live.next_step()
        if ndcg > best["ndcg@10"]:
            best = {"ndcg@10": ndcg, "epoch": epoch, "state": copy.deepcopy(model.state_dict())}
        elif epoch - best["epoch"] >= config.patience:
            break

    model.load_state_dict(best["state"])
    metrics = {
        "best_epoch": best["epoch"],
        "best_val_ndcg@10": best["ndcg@10"],
        "untrained_val_ndcg@10": untrained,
        "epochs_run": len(history),
        "wall_time_s": round(time.perf_counter() - start, 2),
        "train_samples_per_s": round(n_samples / max(train_time, 1e-9), 1),
        "n_val_users": len(val_users),
    }
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    # timings go to metrics/train.json only: the checkpoint dir must hash the same on a re-run
    timeless = [{k: v for k, v in row.items() if k != "epoch_s"} for row in history]
    stable = {k: v for k, v in metrics.items() if k not in ("wall_time_s", "train_samples_per_s")}
    save_model(model, stats, dims, out_dir, {"metrics": stable, "history": timeless})

    return metrics
