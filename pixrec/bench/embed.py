"""Embedding stages vs their bare encoders (docs/scale.md, "The benchmark": a stage should run at >= 90%
of its bare encoder's forward).

On the same items and batch size: ``bare`` is the model's own forward on inputs already in memory
(decoded uint8 cover batches; tokenized text batches); ``stage`` is the library call the stage makes
(decode + resize + forward + finalize + writing the three files), model built and warmed up. Each is
run ``repeats`` times interleaved, so a busy neighbour hits both alike; the best wall time counts,
and ``cpu_ratio`` (CPU seconds, this process + DataLoader workers) is less distorted by contention.
"""

from __future__ import annotations

import resource
import time
from collections.abc import Callable
from pathlib import Path

import polars as pl

from pixrec import schema
from pixrec.encoders.base import TEXT_BACKENDS, write_embedded
from pixrec.encoders.image import CoverDataset, build_image_encoder, embed_images
from pixrec.encoders.text import autocast, build_text_encoder, embed_texts, item_texts, length_order


def cpu_seconds() -> float:
    """User + system CPU of this process and of its reaped children (DataLoader workers)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def measure(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, dict]:
    """Best wall seconds (and that run's CPU seconds) of each function over interleaved repeats."""
    best = {k: {"wall": float("inf"), "cpu": float("nan")} for k in fns}
    for _ in range(repeats):
        for key, fn in fns.items():
            c, t = cpu_seconds(), time.perf_counter()
            fn()
            wall, cpu = time.perf_counter() - t, cpu_seconds() - c
            if wall < best[key]["wall"]:
                best[key] = {"wall": wall, "cpu": cpu}
    return best


def _row(encoder: str, side: str, n: int, m: dict, **extra) -> dict:
    b, s = m["bare"], m["stage"]
    return {"encoder": encoder, "side": side, "n": n, **extra,
            "bare_per_s": round(n / b["wall"], 1), "stage_per_s": round(n / s["wall"], 1),
            "ratio": round(b["wall"] / s["wall"], 3), "cpu_ratio": round(b["cpu"] / s["cpu"], 3)}


def bench_image(config, items: pl.DataFrame, raw: Path, out_dir: Path, repeats: int = 2) -> dict:
    """images/s of the embed-images stage vs its encoder's forward, on ``items`` with a cover."""
    import torch

    items = items.filter(pl.col(schema.COVER_PATH).is_not_null())
    n, bs = items.height, config.batch_size
    enc = build_image_encoder(config)
    covers = [str(Path(raw) / p) for p in items[schema.COVER_PATH]]
    ds = CoverDataset(covers, enc.preprocess, config.min_cover_px)
    t = time.perf_counter()
    batches = [torch.stack([ds[i][0] for i in range(s, min(s + bs, n))]) for s in range(0, n, bs)]
    decode_s = time.perf_counter() - t

    def bare() -> None:
        with torch.inference_mode():
            for b in batches:
                enc.encode(b)

    def stage() -> None:
        write_embedded(embed_images(items, raw, config, encoder=enc, progress=False), out_dir / "image")

    with torch.inference_mode():
        enc.encode(batches[0])  # warm-up: allocator, oneDNN kernels
    m = measure({"bare": bare, "stage": stage}, repeats)
    return _row(config.name, "image", n, m, batch_size=bs, num_workers=config.num_workers,
                threads=torch.get_num_threads(), decode_only_per_s=round(n / decode_s, 1))


def bench_text(config, items: pl.DataFrame, out_dir: Path, repeats: int = 2) -> dict:
    """texts/s of the embed-text stage vs its encoder's forward on the same length-sorted batches."""
    import torch

    enc = build_text_encoder(config)
    texts = item_texts(items, tuple(config.fields))
    order = length_order(texts)
    values = texts.to_list()
    bs = config.batch_size
    chunks = [[values[i] for i in order[s : s + bs]] for s in range(0, len(order), bs)]
    tokenized = [enc.tokenize(c) for c in chunks]  # the encoder's own tokenizer (sbert: preprocess)
    if enc.onnx is not None:  # onnx, onnx-int8: the exported graph
        forward = enc.onnx
    elif hasattr(enc, "forward"):  # bert: AutoModel + pooling
        forward = enc.forward
    else:  # sbert: the SentenceTransformer's forward

        def forward(batch):
            return enc.model(dict(batch))["sentence_embedding"]

    def bare() -> None:
        with torch.inference_mode(), autocast(enc.device, enc.backend):
            for b in tokenized:
                forward(b)

    def stage() -> None:
        write_embedded(embed_texts(items, config, encoder=enc, progress=False), out_dir / "text")

    with torch.inference_mode(), autocast(enc.device, enc.backend):
        forward(tokenized[0])
    m = measure({"bare": bare, "stage": stage}, repeats)
    tokens = sum(int(b["attention_mask"].sum()) for b in tokenized) / max(len(order), 1)
    return _row(config.name, "text", len(order), m, batch_size=bs, threads=torch.get_num_threads(),
                mean_tokens=round(tokens, 1), max_length=config.max_length, backend=config.backend)


def bench_text_backends(config, items: pl.DataFrame, repeats: int = 1) -> list[dict]:
    """texts/s of the embed-text stage call for every ``encoders.text.backend`` on the same items,
    against fp32 ``torch``: the speed-up (wall, and CPU seconds) and the cosine similarity of each
    item's vector to its fp32 one (all are L2-normalised). ``build_s``: loading (+ ONNX export)."""
    from dataclasses import replace

    rows: list[dict] = []
    ref = None
    for backend in TEXT_BACKENDS:  # "torch" first: the reference
        cfg = replace(config, backend=backend)
        t = time.perf_counter()
        enc = build_text_encoder(cfg)
        build_s = time.perf_counter() - t
        out: list = []

        def stage(cfg=cfg, enc=enc, out=out) -> None:
            out.append(embed_texts(items, cfg, encoder=enc, progress=False))

        m = measure({"stage": stage}, repeats)
        res = out[-1]
        ref = res if ref is None else ref
        cos = (res.vectors[res.mask] * ref.vectors[ref.mask]).sum(1)
        n, s = int(res.mask.sum()), m["stage"]
        rows.append({"backend": backend, "encoder": config.name, "n": n, "build_s": round(build_s, 1),
                     "texts_per_s": round(n / s["wall"], 1), "texts_per_cpu_s": round(n / s["cpu"], 1),
                     "cos_mean": round(float(cos.mean()), 5), "cos_min": round(float(cos.min()), 5)})
    for r in rows:
        r["speedup"] = round(r["texts_per_s"] / rows[0]["texts_per_s"], 2)
        r["cpu_speedup"] = round(r["texts_per_cpu_s"] / rows[0]["texts_per_cpu_s"], 2)
    return rows


def read_text_items(path: Path) -> pl.DataFrame:
    """Items with item_id, title, tag, description from ``items.parquet`` or a PixelRec ``item_info.csv``."""
    cols = [schema.ITEM_ID, schema.TITLE, schema.TAG, schema.DESCRIPTION]
    if Path(path).suffix == ".parquet":
        return pl.read_parquet(path, columns=cols)
    return pl.read_csv(path, columns=cols, infer_schema=False)
