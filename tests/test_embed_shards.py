"""Sharded embedding: shards 0..n-1 merged == the single-process output, byte for byte; bad merges refused.

Real code paths on the tiny synthetic dataset: the pixel encoder (whose PCA is fitted at the merge,
on training items only) and the packaged all-MiniLM-L6-v2 through ``sbert`` (length-sorted batches).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from real_params import real_config
from typer.testing import CliRunner

from pixrec import schema
from pixrec.encoders.base import ImageEncoderConfig, TextEncoderConfig, read_item_columns, write_embedded
from pixrec.encoders.shards import Shard, ShardError

ROOT = Path(__file__).resolve().parents[1]
FILES = (schema.EMB_FILE, schema.EMB_MASK_FILE, schema.EMB_META_FILE)
PIXEL = {"name": "pixel", "image_size": 32, "batch_size": 16, "num_workers": 0, "pca_dim": 8}


def _params(path: Path, image: dict) -> Path:
    base = yaml.safe_load((ROOT / "params.yaml").read_text())
    base["encoders"]["image"].update(image)
    path.write_text(yaml.safe_dump(base))
    return path


def _same_bytes(a: Path, b: Path) -> None:
    for name in FILES:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def _images(tiny_raw: Path, tiny_split: Path, out: Path, params: Path, *extra: str):
    from stages.embed_images import app

    args = ["--raw", str(tiny_raw), "--split", str(tiny_split), "--out", str(out), "--params", str(params)]
    res = CliRunner().invoke(app, [*args, *extra])
    return res


@pytest.fixture(scope="module")
def pixel_runs(tiny_raw, tiny_split, tmp_path_factory):
    """The single-process stage output and the shard directories of n = 2 and n = 3, via the CLI."""
    root = tmp_path_factory.mktemp("pixel_shards")
    params = _params(root / "params.yaml", PIXEL)
    res = _images(tiny_raw, tiny_split, root / "single", params)
    assert res.exit_code == 0, res.output
    for n in (2, 3):
        for i in range(n):
            res = _images(tiny_raw, tiny_split, root / f"out{n}", params, "--shard", f"{i}/{n}")
            assert res.exit_code == 0, res.output
            assert f"shard {i}/{n} -> " in res.output
    return root, params


@pytest.mark.slow
@pytest.mark.parametrize("n", [2, 3])
def test_pixel_shards_merge_to_the_single_run_bytes(pixel_runs, tiny_raw, tiny_split, n):
    root, params = pixel_runs
    assert not (root / f"out{n}").exists()  # a shard run never writes the final output
    res = _images(tiny_raw, tiny_split, root / f"out{n}", params, "--merge", str(n))
    assert res.exit_code == 0, res.output
    _same_bytes(root / "single", root / f"out{n}")
    meta = json.loads((root / "single" / schema.EMB_META_FILE).read_text())
    assert meta["pixel"]["n_fit"] > 8 and "device" not in meta and "device" not in meta["config"]
    heads = [json.loads((root / f"out{n}.shards" / Shard(i, n).name / "shard.json").read_text())
             for i in range(n)]
    assert sum(h["n_rows"] for h in heads) == meta["n_items"]
    assert len({h["items"] for h in heads}) == 1 and len({json.dumps(h["config"]) for h in heads}) == 1


@pytest.mark.slow
def test_merge_refuses_missing_and_foreign_shards(pixel_runs, tiny_raw, tiny_split, tmp_path):
    root, params = pixel_runs
    shards = tmp_path / "shards"
    shutil.copytree(root / "out3.shards", shards)
    shutil.rmtree(shards / "shard-1-of-3")
    res = _images(tiny_raw, tiny_split, tmp_path / "out", params, "--merge", "3", "--shard-dir", str(shards))
    assert res.exit_code == 1 and not (tmp_path / "out").exists()
    assert "cannot merge 3 shards: missing shard(s) [1]" in res.output
    assert "run the stage with --shard 1/3 first" in res.output

    # shard 1 re-made with another config: refused, naming the shard and the key that differs
    other = _params(tmp_path / "other.yaml", {**PIXEL, "pca_dim": 4})
    res = _images(tiny_raw, tiny_split, tmp_path / "out", other, "--shard", "1/3", "--shard-dir", str(shards))
    assert res.exit_code == 0, res.output
    res = _images(tiny_raw, tiny_split, tmp_path / "out", params, "--merge", "3", "--shard-dir", str(shards))
    assert res.exit_code == 1 and not (tmp_path / "out").exists()
    assert "shard 1 of 3 was made with a different encoder config (pca_dim: 8 here vs 4)" in res.output
    assert "Traceback" not in res.output

    # another items table (one cover path changed): refused as well
    from pixrec.encoders.image import merge_image_shards

    shutil.rmtree(shards / "shard-1-of-3")
    shutil.copytree(root / "out3.shards" / "shard-1-of-3", shards / "shard-1-of-3")
    items = read_item_columns(tiny_split, [schema.COVER_PATH, schema.N_TRAIN])
    moved = items.with_columns(items[schema.COVER_PATH].scatter(0, "covers/elsewhere.jpg"))
    with pytest.raises(ShardError, match=r"shard 0 of 3 was made from a different items table"):
        merge_image_shards(moved, real_config(ImageEncoderConfig, **PIXEL), 3, shards)


def test_shards_partition_whole_batches():
    order = np.random.default_rng(0).permutation(103)
    for n in (1, 2, 3, 7):
        batches = [b for i in range(n) for b in Shard(i, n).batches(order, 10)]
        starts = sorted(int(np.flatnonzero(order == b[0])[0]) for b in batches)
        assert starts == list(range(0, 103, 10))  # exactly the single process's batches
        assert np.array_equal(np.sort(np.concatenate(batches)), np.arange(103))
    assert Shard.parse(" 2 / 5 ") == Shard(2, 5)
    for bad in ("5/5", "1", "-1/2", "a/b"):
        with pytest.raises(ValueError):
            Shard.parse(bad)
    with pytest.raises(ValueError, match=r"encoders\.text\.device must be one of"):
        real_config(TextEncoderConfig, device="tpu")


@pytest.mark.slow
def test_sbert_shards_merge_to_the_single_run_bytes(tiny_split, tmp_path):
    """Longest-first batches: a shard takes whole batches of the global order, so padding is unchanged."""
    from pixrec.encoders.text import (
        build_text_encoder,
        embed_text_shard,
        embed_texts,
        item_texts,
        length_order,
        merge_text_shards,
    )

    # 90-315 chars: padding varies; torch fp32, whose padded batches round differently (the naive
    # split below shows it)
    cfg = real_config(TextEncoderConfig, name="sbert", batch_size=8, max_length=128, backend="torch")
    items = read_item_columns(tiny_split, list(cfg.fields)).head(40)
    encoder = build_text_encoder(cfg)
    single = embed_texts(items, cfg, encoder=encoder, progress=False)
    write_embedded(single, tmp_path / "single")
    for n in (2, 3):
        for i in range(n):
            embed_text_shard(items, cfg, Shard(i, n), tmp_path / f"s{n}", encoder=encoder, progress=False)
        write_embedded(merge_text_shards(items, cfg, n, tmp_path / f"s{n}"), tmp_path / f"out{n}")
        _same_bytes(tmp_path / "single", tmp_path / f"out{n}")
    meta = json.loads((tmp_path / "single" / schema.EMB_META_FILE).read_text())
    assert meta["dim"] == 384 and meta["n_usable"] == 40 and "device" not in meta["config"]

    # why whole global batches: a naive shard (first half, its own length order) pads differently
    half = items.head(20)
    texts = item_texts(half, tuple(cfg.fields)).to_list()
    order = length_order(item_texts(half, tuple(cfg.fields)))
    naive = np.concatenate([encoder.encode([texts[i] for i in order[s:s + 8]]) for s in range(0, 20, 8)])
    assert not np.array_equal(naive, single.vectors[order])

    with pytest.raises(ShardError, match=r"shard 0 of 2 was made with a different encoder config "
                                         r"\(max_length: 32 here vs 128\)"):
        merge_text_shards(items, dataclasses.replace(cfg, max_length=32), 2, tmp_path / "s2")


@pytest.mark.slow
def test_torchrun_embeds_one_shard_per_rank_and_rank0_merges(pixel_runs, tiny_raw, tiny_split, tmp_path):
    root, params = pixel_runs
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
         "-m", "stages.embed_images", "--raw", str(tiny_raw), "--split", str(tiny_split),
         "--out", str(tmp_path / "out"), "--params", str(params)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    _same_bytes(root / "single", tmp_path / "out")
    assert (tmp_path / "out.shards" / "shard-1-of-2" / "shard.json").is_file()


@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="needs a CUDA device")
def test_cuda_sbert_matches_cpu_within_fp16_tolerance(tiny_split):
    from pixrec.encoders.text import build_text_encoder, embed_texts

    items = read_item_columns(tiny_split, ["title", "tag", "description"]).head(64)
    cpu = embed_texts(items, real_config(TextEncoderConfig, device="cpu"), progress=False)
    gpu = embed_texts(items, real_config(TextEncoderConfig, device="cuda"), progress=False,
                      encoder=build_text_encoder(real_config(TextEncoderConfig, device="cuda")))
    assert gpu.meta["device"] == "cuda" and "device" not in cpu.meta
    assert np.array_equal(cpu.mask, gpu.mask)
    cos = (cpu.vectors[cpu.mask] * gpu.vectors[gpu.mask]).sum(1)  # both L2-normalised
    assert cos.min() > 0.999
