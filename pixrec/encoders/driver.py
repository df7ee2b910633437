"""One embedding run for both sides: all items in one process, one shard of them, or the merge of n shards.

What differs between the image and the text side is an :class:`EmbedSide` adapter: which rows are
encoded in which order (item_idx for covers, longest text first), how a list of rows becomes arrays
(a cover loader + the image model; batches of texts + the text model), the environment the vectors
depend on, which rows are masked and why, and a global finalize step (the pixel encoder's PCA). The
driver owns the rest, once: threads, timings, shard headers, scattering rows back into item_idx
order, the metadata and the atomic write. Single run, shard and merge all end in :func:`finish`, so
the merged output is the single run's, byte for byte.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from pixrec import schema
from pixrec.encoders.base import (
    FITTED_KEY,
    Embedded,
    MaskCounter,
    config_meta,
    machine_threads,
    warn_random,
    write_embedded,
)
from pixrec.encoders.shards import RAW_FILE, ROWS_FILE, Shard, default_shard_dir, read_shards, write_shard

# (raw float32 (n, raw_dim), usable bool (n,)) -> (float32 (n, dim), metadata)
Finalize = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, dict]]


def identity(raw: np.ndarray, usable: np.ndarray) -> tuple[np.ndarray, dict]:
    return raw, {}


class EmbedSide(ABC):
    """What one side (image or text) plugs into the driver, for one items table and config."""

    side: str  # "image" | "text": meta.json's and shard.json's ``side``
    where: str  # the params section, for messages
    rate_key: str  # meta.json's (volatile) throughput key
    arrays: tuple[str, ...]  # per-row arrays a shard stores beside rows.npy; RAW_FILE first
    items: pl.DataFrame
    config: Any

    @abstractmethod
    def order(self) -> np.ndarray:
        """int64 item_idx rows in the single-process encoding order (rows not listed are never encoded)."""

    @abstractmethod
    def digest(self) -> str:
        """Fingerprint of the inputs read from the items table (shards must agree on it)."""

    @abstractmethod
    def build(self, cache_dir: Path | None) -> Any:
        """The encoder, loaded on its device."""

    @abstractmethod
    def encode(self, encoder: Any, rows: np.ndarray, progress: bool) -> tuple[dict[str, np.ndarray], dict]:
        """Encode ``rows`` (m,) in order, in ``config.batch_size`` batches -> ({name: (m, ...)}, timings)."""

    @abstractmethod
    def environment(self, encoder: Any) -> dict:
        """What the vectors depend on beyond config and inputs (weights, versions, device)."""

    @abstractmethod
    def masking(self, arrays: dict[str, np.ndarray]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """(usable bool (n,), {reason: bool (n,)}) from the item_idx-aligned arrays."""

    def extra_meta(self, arrays: dict[str, np.ndarray]) -> dict:
        """Side-specific meta.json entries from the item_idx-aligned arrays (none by default)."""
        return {}

    def finalizer(self, encoder: Any | None, cache_dir: Path | None) -> Finalize:
        """The global step on all rows; ``encoder`` is None at a merge (build only what it needs)."""
        return identity

    def config_meta(self) -> dict:
        return config_meta(self.config)


def _expected(side: EmbedSide) -> dict:
    """What a shard's ``shard.json`` must say for this config and items table."""
    return {"side": side.side, "config": side.config_meta(), "items": side.digest()}


def _scatter(n: int, rows: np.ndarray, arrays: dict[str, np.ndarray], into: dict | None = None) -> dict:
    """Rows (m,) of each (m, ...) array -> item_idx-aligned (n, ...) arrays (zeros where not encoded)."""
    into = {} if into is None else into
    for name, arr in arrays.items():
        if name not in into:
            into[name] = np.zeros((n, *arr.shape[1:]), dtype=arr.dtype)
        into[name][rows] = arr
    return into


def _encode(side: EmbedSide, encoder: Any | None, cache_dir: Path | None, rows: np.ndarray,
            progress: bool) -> tuple[Any, dict[str, np.ndarray], dict]:
    """Build the encoder (unless given) and encode ``rows``; timings in seconds."""
    import torch

    t0 = time.perf_counter()
    torch.set_num_threads(machine_threads())
    encoder = encoder or side.build(cache_dir)
    t1 = time.perf_counter()
    arrays, loop = side.encode(encoder, rows, progress)
    timings = {"load_model": t1 - t0, "encode": time.perf_counter() - t1,
               **{f"encode.{k}": v for k, v in loop.items()}}
    return encoder, arrays, timings


def finish(side: EmbedSide, arrays: dict[str, np.ndarray], env: dict, finalize: Finalize, timings: dict,
           n_encoded: int) -> Embedded:
    """item_idx-aligned arrays (``RAW_FILE`` float32 (n, raw_dim), ...) -> Embedded with its metadata.

    Shared by the single-process run and the shard merge, so both write the same bytes.
    """
    import torch

    usable, reasons = side.masking(arrays)
    t = time.perf_counter()
    vectors, extra = finalize(arrays[RAW_FILE], usable)
    vectors[~usable] = 0.0
    fitted = extra.pop(FITTED_KEY, {})
    timings = {**timings, "finalize": time.perf_counter() - t}
    ids = side.items[schema.ITEM_ID].to_numpy()
    masked = MaskCounter()
    for reason, rows in reasons.items():
        masked.add(reason, ids[rows].tolist())
    n, t_encode = side.items.height, timings.get("encode")
    meta = {
        "side": side.side,
        **env,
        "config": side.config_meta(),
        "dim": int(vectors.shape[1]),
        "n_items": n,
        "n_usable": int(usable.sum()),
        "n_masked": int(n - usable.sum()),
        "masked": masked.as_dict(),
        "timings_s": timings,
        side.rate_key: n_encoded / t_encode if t_encode else None,
        "torch_threads": torch.get_num_threads(),
        **side.extra_meta(arrays),
    }
    if extra:
        meta[env["encoder"]] = extra
    if fitted:
        meta[FITTED_KEY] = sorted(fitted)  # saved beside the vectors (write_embedded)
    if env.get("random_weights"):
        warn_random(f"{side.where} {env['encoder']}")
    return Embedded(vectors, usable, meta, fitted)


def embed(side: EmbedSide, *, cache_dir: Path | None = None, progress: bool = True,
          encoder: Any | None = None) -> Embedded:
    """Every row of ``side.order()`` in this process."""
    rows = side.order()
    encoder, arrays, timings = _encode(side, encoder, cache_dir, rows, progress)
    full = _scatter(side.items.height, rows, arrays)
    return finish(side, full, side.environment(encoder), side.finalizer(encoder, cache_dir), timings,
                  len(rows))


def embed_shard(side: EmbedSide, shard: Shard, shard_dir: Path, *, cache_dir: Path | None = None,
                progress: bool = True, encoder: Any | None = None) -> dict:
    """Encode this shard's whole batches (raw, pre-finalize) into ``shard_dir``; returns its header."""
    import torch

    rows = shard.rows(side.order(), side.config.batch_size)
    encoder, arrays, timings = _encode(side, encoder, cache_dir, rows, progress)
    t_encode = timings["encode"]
    header = {**_expected(side), "env": side.environment(encoder), "n_rows": len(rows), "timings_s": timings,
              "items_per_s": len(rows) / t_encode if t_encode > 0 else None,
              "torch_threads": torch.get_num_threads()}
    path = write_shard(shard_dir, shard, header, {ROWS_FILE: rows, **arrays})
    return {**header, "shard": shard.index, "of": shard.count, "path": str(path)}


def merge_shards(side: EmbedSide, count: int, shard_dir: Path, *, cache_dir: Path | None = None) -> Embedded:
    """Shards ``0..count-1`` scattered back into item_idx order, then finished as one run would."""
    order = side.order()
    shards = read_shards(shard_dir, count, _expected(side),
                         lambda s: s.rows(order, side.config.batch_size), side.arrays)
    full: dict[str, np.ndarray] = {}
    for _, data in shards:
        _scatter(side.items.height, data[ROWS_FILE], {k: data[k] for k in side.arrays}, full)
    encode_s = max((h["timings_s"]["encode"] for h, _ in shards), default=0.0)
    return finish(side, full, shards[0][0]["env"], side.finalizer(None, cache_dir),
                  {"encode": encode_s, "shards": count}, len(order))


def run(side: EmbedSide, out_dir: Path, *, cache_dir: Path | None = None, progress: bool = True,
        shard: Shard | None = None, merge: int | None = None, shard_dir: Path | None = None) -> dict:
    """A stage: embed and write ``out_dir`` atomically; returns the metadata.

    ``shard``: embed only that shard into ``shard_dir`` (default ``<out_dir>.shards``) and return its
    header; ``merge``: merge that many shards from ``shard_dir`` into ``out_dir``.
    """
    shard_dir = Path(shard_dir) if shard_dir is not None else default_shard_dir(out_dir)
    if shard is not None:
        return embed_shard(side, shard, shard_dir, cache_dir=cache_dir, progress=progress)
    if merge is not None:
        result = merge_shards(side, merge, shard_dir, cache_dir=cache_dir)
    else:
        result = embed(side, cache_dir=cache_dir, progress=progress)
    write_embedded(result, out_dir)
    return result.meta


__all__ = ["EmbedSide", "embed", "embed_shard", "finish", "identity", "merge_shards", "run"]
