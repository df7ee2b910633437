"""Run the benchmark parts on one workspace (a pipeline checkout whose data/ and models/ exist)."""

from __future__ import annotations

import json
import resource
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pixrec.bench import compute, machine, pipeline
from pixrec.data.dataset import SplitData
from pixrec.errors import InputError
from pixrec.features import load_embeddings
from pixrec.models import family
from pixrec.models.cold_lift import Yardstick
from pixrec.negatives import load_training_negatives

# the embed parts' module (the encoders, onnxruntime) is imported when one of them runs

PARTS = ("stages", "embed", "text-backends", "train", "ranking", "recommend", "fusion", "serving")
# text-backends: on request
DEFAULT_PARTS = ("stages", "embed", "train", "ranking", "recommend", "fusion", "serving")


@dataclass(frozen=True)
class BenchOptions:
    parts: tuple[str, ...] = DEFAULT_PARTS
    n_images: int = 512
    n_texts: int = 512
    repeats: int = 2
    train_steps: int = 30
    ranking_users: int = 0  # 0 = every user of the split
    fusion_users: int = 32
    serving_runs: int = 3  # serving: runs of each command (median reported)
    seed: int = 0
    text_items: Path | None = None  # text-backends: items.parquet or item_info.csv (default: the split's)
    stage_log: Path | None = None  # read per-stage figures from this log ...
    repro: bool = False  # ... or run `dvc repro --force` in the workspace to make one

    def __post_init__(self) -> None:
        unknown = sorted(set(self.parts) - set(PARTS))
        if unknown:
            raise InputError(f"bench: unknown part(s) {unknown}; choose from {list(PARTS)}")


@dataclass
class Workspace:
    """The paths of a pipeline checkout, as dvc.yaml lays them out."""

    root: Path
    raw: Path = field(init=False)
    split: Path = field(init=False)
    embeddings: Path = field(init=False)
    negatives: Path = field(init=False)
    models: Path = field(init=False)

    def __post_init__(self) -> None:
        r = self.root = Path(self.root)
        self.raw, self.split, self.embeddings = r / "data/raw", r / "data/split", r / "data/embeddings"
        self.negatives, self.models = r / "data/negatives", r / "models"


def _peak_mib() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def run_benchmark(root: Path, image_config, text_config, sections: dict, recommend_config,
                  options: BenchOptions, log: Callable[[str], None] = print) -> dict:
    """Every part of ``options.parts`` on the workspace at ``root``; a JSON-ready dict of figures.
    ``sections``: each trained model's params section by name (``fusion``, ``two_tower``);
    ``recommend_config``: the recommend stage's (k, batch_users)."""
    ws = Workspace(root)
    out: dict = {"machine": machine.describe(), "workspace": str(ws.root.resolve())}
    data = SplitData.load(ws.split)
    out["dataset"] = {"users": data.n_users, "items": data.n_items, "train": len(data.train),
                      "valid": len(data.valid), "test": len(data.test)}
    log(f"dataset: {data.n_users:,} users x {data.n_items:,} items, {len(data.train):,} train pairs")
    rng = np.random.default_rng(options.seed)

    if "stages" in options.parts:
        if options.repro:
            rows = pipeline.run_repro(ws.root, ws.root / ".pixrec_stage_log.jsonl")
        elif options.stage_log is not None:
            rows = pipeline.read_stage_log(options.stage_log)
        else:
            rows = None
        if rows is not None:
            out["stages"] = {"rows": rows, **pipeline.summarise(rows)}
            for r in rows:
                log(f"stage {r['stage']:<28} {r['wall_s']:>9.1f} s  {r['peak_rss_mib']:>9.0f} MiB")
        for train_json in sorted((ws.root / "metrics/train").glob("*.json")):  # the pipeline's own
            out.setdefault("pipeline_train", {})[train_json.stem] = json.loads(train_json.read_text())

    if "embed" in options.parts:
        out["embed"] = _embed(ws, image_config, text_config, options, rng, log)
    if "text-backends" in options.parts:
        out["text_backends"] = _text_backends(ws, text_config, options, rng, log)

    gflops = compute.matmul_gflops() if {"fusion", "train"} & set(options.parts) else None
    if gflops:
        out["matmul_gflops"] = gflops
        log(f"fp32 matmul 2048^3: {gflops} GFLOP/s")

    if "train" in options.parts:
        out["train"] = _train(ws, data, sections, options, log)

    if "ranking" in options.parts:
        n = options.ranking_users or data.n_users
        seen = data.seen_matrix[:n]
        targets = rng.integers(0, data.n_items, size=n)
        out["ranking"] = compute.ranking_throughput(seen, targets, seed=options.seed)
        log(f"full ranking (dot product, dim 64): {out['ranking']['users_per_s']:,.0f} users/s, "
            f"{n:,} users in {out['ranking']['seconds']} s")

    if "recommend" in options.parts:
        r = recommend_config
        out["recommend"] = compute.recommend_throughput(data.seen_matrix, r.k, r.batch_users,
                                                        seed=options.seed)
        log(f"recommend top-{r.k} (dot product, dim 64): {out['recommend']['users_per_s']:,.0f} users/s, "
            f"{data.n_users:,} users x {data.n_items:,} items in {out['recommend']['seconds']} s")

    if "fusion" in options.parts:
        rec = family("fusion").load(ws.models / "fusion", data, ws.embeddings, name="fusion")
        torch_threads(sections["fusion"].train.threads)
        users = np.sort(rng.choice(data.n_users, size=min(options.fusion_users, data.n_users), replace=False))
        out["fusion"] = compute.fusion_throughput(rec, users, gflops)
        log(f"fusion exact scoring: {out['fusion']['pairs_per_s']:,.0f} pairs/s "
            f"({out['fusion']['mflop_per_pair']} MFLOP/pair, {out['fusion'].get('matmul_share')} of matmul)")
    if "serving" in options.parts:
        from pixrec.bench.serving import serving

        out["serving"] = serving(ws.root, ws.split, ws.raw, options.serving_runs, log)
    out["bench_peak_rss_mib"] = _peak_mib()
    out["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    return out


def _embed(ws: Workspace, image_config, text_config, options: BenchOptions, rng: np.random.Generator,
           log: Callable[[str], None]) -> list[dict]:
    """Each embed stage vs its bare encoder on ``n_images`` / ``n_texts`` sampled items."""
    import polars as pl

    from pixrec.bench.embed import bench_image, bench_text

    items = pl.read_parquet(ws.split / "items.parquet")
    pick = np.sort(rng.choice(items.height, size=min(options.n_images, items.height), replace=False))
    pick_t = np.sort(rng.choice(items.height, size=min(options.n_texts, items.height), replace=False))
    with tempfile.TemporaryDirectory(prefix="pixrec-bench-") as tmp:
        rows = [bench_image(image_config, items[pick], ws.raw, Path(tmp), options.repeats),
                bench_text(text_config, items[pick_t], Path(tmp), options.repeats)]
    for r in rows:
        log(f"embed {r['side']:<5} {r['encoder']:<8} bare {r['bare_per_s']:>8.1f}/s  "
            f"stage {r['stage_per_s']:>8.1f}/s  ratio {r['ratio']:.2f}  cpu_ratio {r['cpu_ratio']:.2f}")
    return rows


def _text_backends(ws: Workspace, text_config, options: BenchOptions, rng: np.random.Generator,
                   log: Callable[[str], None]) -> dict:
    """Every text backend against fp32 torch on ``n_texts`` items (of ``text_items`` when given)."""
    from pixrec.bench.embed import bench_text_backends, read_text_items

    source = options.text_items or ws.split / "items.parquet"
    items = read_text_items(source)
    items = items[np.sort(rng.choice(items.height, size=min(options.n_texts, items.height), replace=False))]
    rows = bench_text_backends(text_config, items, options.repeats)
    for r in rows:
        log(f"text backend {r['backend']:<10} {r['texts_per_s']:>7.1f} texts/s  x{r['speedup']:.2f} "
            f"(cpu x{r['cpu_speedup']:.2f})  cosine to fp32 mean {r['cos_mean']:.5f} min {r['cos_min']:.5f}")
    return {"items": str(source), "n_sampled": items.height, "rows": rows}


def torch_threads(n: int) -> None:
    import torch

    torch.set_num_threads(n)


def _train(ws: Workspace, data, sections: dict, options: BenchOptions, log: Callable[[str], None]) -> dict:
    """Training samples/s of each model's own step (pixrec.training.Task) on the workspace's data."""
    import torch

    embeddings = load_embeddings(ws.embeddings, data.n_items)
    out = {}
    for name, section in sections.items():
        fam = family(name)
        negs = load_training_negatives(ws.negatives) if fam.reads_negatives else None
        torch_threads(section.train.threads)
        # the step alone is timed: no checkpoint is saved, so no cold lift is chosen against this
        task = fam.task(data, embeddings, negs, section, torch.device("cpu"), Yardstick(0.0, 0.0, "", ""))
        out[name] = {**compute.training_throughput(task, section.train.batch_size, options.train_steps,
                                                   section.train.lr), "threads": section.train.threads}
        log(f"train {name}: {out[name]['samples_per_s']:,.0f} samples/s (batch {section.train.batch_size})")
    return out
