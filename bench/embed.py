"""Benchmark: embedding stages vs. their bare encoders (design notes §7: stage >= 90% of bare).

For each encoder, on the same covers / texts and batch size:
- ``bare``:  the model's own forward on inputs already in memory (decoded uint8 image batches;
  tokenized text batches), images/s or texts/s;
- ``stage``: the library call the stage makes (decode + resize + model + finalize + write of the
  three output files), model already built and warmed up;
- ``ratio`` = stage / bare throughput, best wall-clock of ``--repeats`` interleaved runs (the machine
  is shared: a neighbour's load hits both alike); ``cpu_ratio`` compares CPU seconds (this process
  + DataLoader workers), which contention distorts less.

Images are generated JPEG covers (``--cover-size``) unless ``--raw``/``--split`` point at real data.
Random-weight models stand in for pretrained ones: throughput does not depend on weight values.

    python bench/embed.py                                   # all encoders, 256 covers / 512 texts
    python bench/embed.py --n-images 32 --n-texts 64 --encoders pixel sbert --num-workers 0 1
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the embed stages set it (see stages/embed_images.py)

import numpy as np
import polars as pl

IMAGE_SPECS = {  # encoder -> encoders.image entries (random weights: no pretrained ones offline)
    "pixel": dict(name="pixel", pca_dim=64),
    "resnet18": dict(name="resnet", arch="resnet18", weights="random"),
    "clip-vit-b-32": dict(name="clip", arch="ViT-B-32", weights="random"),
    "dino-vits16": dict(name="dino", arch="dino_vits16", weights="random"),
}
TEXT_SPECS = {"sbert": dict(name="sbert"), "bert": dict(name="bert", pooling="mean")}
WORDS = ("summer dress beach wedding gala red blue silk cotton recipe pasta tomato basil car engine "
         "repair gearbox travel mountain lake sunset guitar lesson chord piano game level boss cat "
         "kitten dog puppy funny dance music video tutorial review unboxing phone camera").split()


def make_data(root: Path, n_images: int, n_texts: int, cover: tuple[int, int], seed: int) -> None:
    """``root/raw/covers/*.jpg`` and ``root/split/items.parquet`` (max(n_images, n_texts) items)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    n = max(n_images, n_texts)
    ids = [f"i{k:06d}" for k in range(n)]
    (root / "raw" / "covers").mkdir(parents=True)
    w, h = cover
    for k in range(n_images):  # smooth colour fields + edges + noise: JPEG-realistic entropy
        small = rng.integers(0, 256, (h // 16, w // 16, 3), dtype=np.uint8)
        img = np.asarray(Image.fromarray(small).resize((w, h), Image.Resampling.BICUBIC), dtype=np.int16)
        img = img + rng.integers(-12, 12, img.shape)
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(root / "raw" / "covers" / f"{ids[k]}.jpg",
                                                                    quality=90)
    def sentence(lo: int, hi: int) -> str:
        return " ".join(rng.choice(WORDS, rng.integers(lo, hi)))
    items = pl.DataFrame({
        "item_idx": np.arange(n, dtype=np.int32), "item_id": ids,
        "title": [sentence(4, 12) for _ in range(n)], "tag": [str(rng.choice(WORDS)) for _ in range(n)],
        "description": [sentence(10, 50) for _ in range(n)],
        "cover_path": [f"covers/{i}.jpg" if k < n_images else None for k, i in enumerate(ids)],
        "n_train": np.ones(n, dtype=np.int32),
    })
    (root / "split").mkdir()
    items.write_parquet(root / "split" / "items.parquet")


def cpu_seconds() -> float:
    """User + system CPU of this process and of its reaped children (DataLoader workers)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def measure(fns: dict, repeats: int) -> dict[str, dict]:
    """Run each of ``fns`` ``repeats`` times, interleaved (so a noisy neighbour hits all alike);
    best wall-clock seconds and the CPU seconds of that run."""
    best: dict[str, dict] = {k: {"wall": float("inf"), "cpu": float("nan")} for k in fns}
    for _ in range(repeats):
        for key, fn in fns.items():
            c, t = cpu_seconds(), time.perf_counter()
            fn()
            wall, cpu = time.perf_counter() - t, cpu_seconds() - c
            if wall < best[key]["wall"]:
                best[key] = {"wall": wall, "cpu": cpu}
    return best


def row(label: str, side: str, n: int, m: dict, bare: str, stage: str, **extra) -> dict:
    b, s = m[bare], m[stage]
    return {"encoder": label, "side": side, "n": n, **extra,
            "bare_per_s": round(n / b["wall"], 1), "stage_per_s": round(n / s["wall"], 1),
            "ratio": round(b["wall"] / s["wall"], 3),
            "bare_cpu_s": round(b["cpu"], 2), "stage_cpu_s": round(s["cpu"], 2),
            "cpu_ratio": round(b["cpu"] / s["cpu"], 3)}


def bench_image(label, spec, items, raw, batch_size, workers_list, repeats, out_dir) -> list[dict]:
    import torch

    from pixrec.encoders.base import ImageEncoderConfig, machine_threads, write_embedded
    from pixrec.encoders.image import CoverDataset, build_image_encoder, embed_images

    torch.set_num_threads(machine_threads())
    items = items.filter(pl.col("cover_path").is_not_null())
    n = items.height
    config = ImageEncoderConfig(**spec, batch_size=batch_size, num_workers=0)
    t = time.perf_counter()
    enc = build_image_encoder(config)
    load_s = time.perf_counter() - t
    ds = CoverDataset([str(raw / p) for p in items["cover_path"]], enc.preprocess)
    t = time.perf_counter()
    batches = [torch.stack([ds[i][0] for i in range(s, min(s + batch_size, n))])
               for s in range(0, n, batch_size)]  # uint8 (B, 3, S, S), decoded up front
    decode_s = time.perf_counter() - t

    def bare() -> None:
        with torch.inference_mode():
            for b in batches:
                enc.encode(b)

    fns = {"bare": bare}
    for workers in workers_list:
        cfg = ImageEncoderConfig(**spec, batch_size=batch_size, num_workers=workers)
        fns[f"stage{workers}"] = lambda cfg=cfg: write_embedded(
            embed_images(items, raw, cfg, encoder=enc, progress=False), out_dir / label)
    with torch.inference_mode():
        enc.encode(batches[0])  # warm-up (allocator, oneDNN kernels)
    m = measure(fns, repeats)
    rows = []
    for workers in workers_list:
        rows.append(row(label, "image", n, m, "bare", f"stage{workers}", batch_size=batch_size,
                        num_workers=workers, threads=torch.get_num_threads(),
                        image_size=enc.preprocess.size, load_model_s=round(load_s, 3),
                        decode_only_per_s=round(n / decode_s, 1)))
        print(json.dumps(rows[-1]), flush=True)
    return rows


def bench_text(label, spec, items, batch_size, repeats, out_dir) -> list[dict]:
    import torch

    from pixrec.encoders.base import TextEncoderConfig, machine_threads, write_embedded
    from pixrec.encoders.text import build_text_encoder, embed_texts, item_texts, length_order

    torch.set_num_threads(machine_threads())
    config = TextEncoderConfig(**spec, batch_size=batch_size)
    t = time.perf_counter()
    enc = build_text_encoder(config)
    load_s = time.perf_counter() - t
    texts = item_texts(items, tuple(config.fields))
    order = length_order(texts)
    values = texts.to_list()
    chunks = [[values[i] for i in order[s:s + batch_size]] for s in range(0, len(order), batch_size)]
    if label == "sbert":
        model = enc.model
        tokenized = [model.preprocess(c) for c in chunks]

        def forward(batch):
            return model(dict(batch))["sentence_embedding"]
    else:
        tokenized = [enc.tokenize(c) for c in chunks]
        forward = enc.forward

    def bare() -> None:
        with torch.inference_mode():
            for b in tokenized:
                forward(b)

    def stage() -> None:
        write_embedded(embed_texts(items, config, encoder=enc, progress=False), out_dir / label)

    with torch.inference_mode():
        forward(tokenized[0])
    m = measure({"bare": bare, "stage": stage}, repeats)
    n = len(order)
    tokens = float(np.mean([int(b["attention_mask"].sum()) / len(b["attention_mask"]) for b in tokenized]))
    r = row(label, "text", n, m, "bare", "stage", batch_size=batch_size, num_workers=0,
            threads=torch.get_num_threads(), mean_tokens=round(tokens, 1), max_length=config.max_length,
            load_model_s=round(load_s, 3))
    print(json.dumps(r), flush=True)
    return [r]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--encoders", nargs="+", default=[*IMAGE_SPECS, *TEXT_SPECS],
                    choices=[*IMAGE_SPECS, *TEXT_SPECS])
    ap.add_argument("--n-images", type=int, default=256)
    ap.add_argument("--n-texts", type=int, default=512)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--num-workers", type=int, nargs="+", default=[0, 1], help="image stage, each measured")
    ap.add_argument("--cover-size", type=int, nargs=2, default=[480, 360], metavar=("W", "H"))
    ap.add_argument("--raw", type=Path, help="use real covers (with --split) instead of generated ones")
    ap.add_argument("--split", type=Path)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("bench/results/embed.json"))
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="pixrec-bench-embed-") as tmp:
        tmp = Path(tmp)
        if args.raw and args.split:
            raw = args.raw
            items = pl.read_parquet(args.split / "items.parquet")
        else:
            make_data(tmp, args.n_images, args.n_texts, tuple(args.cover_size), args.seed)
            raw, items = tmp / "raw", pl.read_parquet(tmp / "split" / "items.parquet")
        rows: list[dict] = []
        for label in args.encoders:
            if label in IMAGE_SPECS:
                rows += bench_image(label, IMAGE_SPECS[label], items.head(args.n_images), raw,
                                    args.batch_size, args.num_workers, args.repeats, tmp / "out")
            else:
                rows += bench_text(label, TEXT_SPECS[label], items.head(args.n_texts), args.batch_size,
                                   args.repeats, tmp / "out")
    result = {
        "rows": rows,
        "machine": {"cpus": len(os.sched_getaffinity(0)), "python": platform.python_version(),
                    "load_avg_at_end": os.getloadavg()},
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{'encoder':<15}{'workers':>8}{'bare/s':>10}{'stage/s':>10}{'ratio':>8}{'cpu_ratio':>10}",
          file=sys.stderr)
    for r in rows:
        print(f"{r['encoder']:<15}{r['num_workers']:>8}{r['bare_per_s']:>10}{r['stage_per_s']:>10}"
              f"{r['ratio']:>8}{r['cpu_ratio']:>10}", file=sys.stderr)
    print(f"-> {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
