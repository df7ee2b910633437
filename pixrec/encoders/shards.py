"""Sharded embedding: n processes (or hosts) each embed a slice of the items, one merge writes the output.

Slicing is by *whole batches of the single-process run*: that run encodes its rows in a fixed order
(item_idx for images, longest text first for text) cut into ``batch_size`` batches; shard ``i/n``
encodes global batches ``i, i+n, i+2n, ...`` (strided, so each shard gets long and short texts
alike). Every batch therefore holds exactly the rows, padding included, that it holds in one
process, and the merged output is byte-identical to the unsharded one.

A shard directory (``<out>.shards/shard-<i>-of-<n>/`` by default, written atomically) holds
``rows.npy`` int64 (m,) item_idx in encoding order, ``raw.npy`` float32 (m, raw_dim) *before* any
global finalize step (the pixel encoder's train-only scaling + PCA runs once, at the merge),
``status.npy`` int8 (m,) (image side) and ``shard.json``. ``shard.json`` records a fingerprint of
the encoder config and of the items the shard read, and the run's environment (weights, versions,
device); the merge refuses a missing shard or one whose fingerprint differs, naming it.

Under ``torchrun`` (WORLD_SIZE > 1) rank r embeds shard r/world and rank 0 merges after a gloo
barrier; the shard directory must then be on storage all hosts see.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from pixrec.atomic import atomic_dir
from pixrec.errors import InputError

SHARD_META, ROWS_FILE, RAW_FILE, STATUS_FILE = "shard.json", "rows.npy", "raw.npy", "status.npy"
BARRIER_TIMEOUT = timedelta(hours=12)  # a slow shard must not time the others out


class ShardError(InputError):
    """A shard is missing, or was made from another config or items table."""


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count`` (0-based)."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.index < self.count:
            raise InputError(f"shard {self.index}/{self.count}: need 0 <= i < n")

    @classmethod
    def parse(cls, spec: str) -> Shard:
        """``"i/n"`` -> Shard(i, n)."""
        m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", spec)
        if not m:
            raise InputError(f"--shard {spec!r}: expected i/n with 0 <= i < n, e.g. 0/4")
        return cls(int(m[1]), int(m[2]))

    @property
    def name(self) -> str:
        return f"shard-{self.index}-of-{self.count}"

    def batches(self, order: np.ndarray, batch_size: int) -> list[np.ndarray]:
        """This shard's batches of ``order`` (the single-process encoding order): global batches
        ``index, index + count, ...``, each exactly as the single process cuts it."""
        starts = range(self.index * batch_size, len(order), self.count * batch_size)
        return [order[s:s + batch_size] for s in starts]

    def rows(self, order: np.ndarray, batch_size: int) -> np.ndarray:
        """int64 (m,): the rows of :meth:`batches`, concatenated."""
        parts = self.batches(order, batch_size)
        return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, dtype=np.int64)


def default_shard_dir(out_dir: Path) -> Path:
    """``data/embeddings/image`` -> ``data/embeddings/image.shards`` (beside, never inside, the output)."""
    out_dir = Path(out_dir)
    return out_dir.with_name(out_dir.name + ".shards")


def items_digest(*columns: pl.Series) -> str:
    """sha256 of the named columns' values: what a shard read from items.parquet."""
    h = hashlib.sha256()
    for col in columns:
        h.update(json.dumps([col.name, col.to_list()], ensure_ascii=False, default=str).encode())
    return h.hexdigest()


def write_shard(shard_dir: Path, shard: Shard, header: dict, arrays: dict[str, np.ndarray]) -> Path:
    """Write one shard directory atomically; ``header`` goes to ``shard.json``."""
    path = Path(shard_dir) / shard.name
    with atomic_dir(path) as tmp:
        for name, arr in arrays.items():
            np.save(tmp / name, arr)
        header = {**header, "shard": shard.index, "of": shard.count}
        (tmp / SHARD_META).write_text(json.dumps(header, indent=2, sort_keys=True, default=str) + "\n",
                                      encoding="utf-8")
    return path


def _diff(a: dict, b: dict) -> str:
    keys = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    return ", ".join(f"{k}: {a.get(k)!r} here vs {b.get(k)!r}" for k in keys[:6])


def read_shards(
    shard_dir: Path, count: int, expected: dict[str, Any], rows_of: Callable[[Shard], np.ndarray],
    arrays: tuple[str, ...],
) -> list[tuple[dict, dict[str, np.ndarray]]]:
    """Load and check shards ``0..count-1`` of ``shard_dir``.

    ``expected`` holds what this merge would make them with (``side``, ``config``, ``items``);
    each shard's ``env`` (weights, versions, device) must equal shard 0's; ``rows_of(shard)`` must
    equal the rows it stored. Raises :class:`ShardError` naming the first bad shard.
    """
    shard_dir = Path(shard_dir)
    if count < 1:
        raise ShardError(f"--merge {count}: need at least one shard")
    shards = [Shard(i, count) for i in range(count)]
    missing = [s for s in shards if not (shard_dir / s.name / SHARD_META).is_file()]
    if missing:
        names = ", ".join(str(shard_dir / s.name) for s in missing)
        raise ShardError(f"cannot merge {count} shards: missing shard(s) {[s.index for s in missing]} "
                         f"({names}); run the stage with --shard {missing[0].index}/{count} first")
    out: list[tuple[dict, dict[str, np.ndarray]]] = []
    for s in shards:
        path = shard_dir / s.name
        head = json.loads((path / SHARD_META).read_text(encoding="utf-8"))
        where = f"{path}: shard {s.index} of {count}"
        if head.get("side") != expected["side"]:
            raise ShardError(f"{where} is a {head.get('side')} shard, not {expected['side']}")
        if head.get("config") != expected["config"]:
            raise ShardError(f"{where} was made with a different encoder config "
                             f"({_diff(expected['config'], head.get('config') or {})}); re-run it with "
                             f"--shard {s.index}/{count}")
        if head.get("items") != expected["items"]:
            raise ShardError(f"{where} was made from a different items table (item ids / inputs hash "
                             f"{head.get('items')} vs {expected['items']} here); re-run it with "
                             f"--shard {s.index}/{count}")
        if out and head.get("env") != out[0][0].get("env"):
            raise ShardError(f"{where} was made in another environment than shard 0 "
                             f"({_diff(head.get('env') or {}, out[0][0].get('env') or {})}); "
                             "all shards need the same weights, versions and device")
        data = {name: np.load(path / name) for name in (ROWS_FILE, *arrays)}
        if not np.array_equal(data[ROWS_FILE], rows_of(s)):
            raise ShardError(f"{where}: its rows are not the ones this config assigns to it; re-run it")
        out.append((head, data))
    return out


# --------------------------------------------------------------------------------------------
# torchrun


def torchrun_shard() -> Shard | None:
    """This process's shard under torchrun (WORLD_SIZE > 1), else None."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return Shard(int(os.environ.get("RANK", "0")), world) if world > 1 else None


def run_distributed(run_shard: Callable[[Shard], Any], merge: Callable[[int], Any]) -> Any:
    """Under torchrun: embed shard rank/world, wait for all ranks (gloo), merge on rank 0.

    Returns the merge's result on rank 0 and the shard's on the others. Each rank uses its own GPU
    (LOCAL_RANK) when CUDA is present, and its share of the host's cores (see ``machine_threads``).
    """
    import torch
    import torch.distributed as dist

    shard = torchrun_shard()
    assert shard is not None, "run_distributed needs torchrun's WORLD_SIZE > 1"
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")) % torch.cuda.device_count())
    dist.init_process_group("gloo", timeout=BARRIER_TIMEOUT)
    try:
        result = run_shard(shard)
        dist.barrier()  # every shard directory is written (atomically) before rank 0 reads them
        if shard.index == 0:
            result = merge(shard.count)
        dist.barrier()  # the others exit once the output exists
        return result
    finally:
        dist.destroy_process_group()


def dispatch(run: Callable[..., dict], shard: str | None, merge: int | None) -> tuple[str, dict]:
    """A stage's mode -> ``("shard", header)`` or ``("output", meta)``.

    ``run(shard=..., merge=...)`` is the stage's library call. Neither option under torchrun: rank r
    embeds shard r/world and rank 0 merges; else one process embeds everything.
    """
    if shard is not None and merge is not None:
        raise InputError("--shard and --merge are exclusive: embed one shard, or merge them all")
    if shard is not None:
        return "shard", run(shard=Shard.parse(shard))
    if merge is None and torchrun_shard() is not None:
        result = run_distributed(lambda s: run(shard=s), lambda n: run(merge=n))
        return ("output", result) if torchrun_shard().index == 0 else ("shard", result)
    return "output", run(merge=merge)


def describe_shard(header: dict, unit: str) -> str:
    """One line for a finished shard."""
    rate = header.get("items_per_s")
    return (f"shard {header['shard']}/{header['of']} -> {header['path']}: {header['n_rows']} items"
            + (f", {rate:.0f} {unit}/s" if rate else ""))


__all__ = ["Shard", "ShardError", "default_shard_dir", "describe_shard", "dispatch", "items_digest",
           "read_shards", "run_distributed", "torchrun_shard", "write_shard"]
