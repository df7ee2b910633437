"""The synthetic PixelRec: exact layout, every defect, the planted structure, and determinism."""

from __future__ import annotations

import csv
import hashlib
import re
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from PIL import Image

from pixrec import schema
from pixrec.config import ConfigError
from pixrec.data.synthetic import PRESETS, SyntheticConfig, _lognormal_counts, generate, topic_style
from pixrec.registry import UnknownNameError


def digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def raw(tiny_raw) -> dict:
    truth = tiny_raw / schema.RAW_TRUTH
    return {
        "dir": tiny_raw,
        "inter": pl.read_csv(tiny_raw / schema.RAW_INTERACTIONS, infer_schema=False),
        "items": pl.read_csv(tiny_raw / schema.RAW_ITEMS, infer_schema=False),
        "truth_items": pl.read_parquet(truth / "items.parquet"),
        "user_topics": pl.read_parquet(truth / "user_topics.parquet"),
    }


def test_same_seed_same_bytes_other_seed_other_data(tiny_raw, tmp_path):
    again = generate(SyntheticConfig.from_preset("tiny", seed=1), tmp_path / "again")
    first = digest(tiny_raw)
    assert len(first) > 250 and first == digest(tmp_path / "again")
    assert again["n_interactions"] == 3_000
    generate(SyntheticConfig.from_preset("tiny", seed=2, n_users=60, n_items=100, n_interactions=900),
             tmp_path / "other")
    other = digest(tmp_path / "other")
    assert other[schema.RAW_INTERACTIONS] != first[schema.RAW_INTERACTIONS]


def test_layout_headers_and_ids_are_pixelrec(raw):
    root = raw["dir"]
    for name, columns in ((schema.RAW_INTERACTIONS, schema.INTERACTION_COLUMNS),
                          (schema.RAW_ITEMS, schema.ITEM_COLUMNS)):
        assert (root / name).read_text(encoding="utf-8").splitlines()[0] == ",".join(columns)
    inter, items = raw["inter"], raw["items"]
    assert inter[schema.ITEM_ID].str.contains(r"^i\d+$").all()
    assert inter[schema.USER_ID].str.contains(r"^u\d+$").all()
    assert inter[schema.TIMESTAMP].str.contains(r"^\d{10}$").all()  # unix seconds
    assert items[schema.ITEM_ID].n_unique() == items.height == 250
    unique = inter.unique([schema.USER_ID, schema.ITEM_ID])
    assert unique.height == 3_000 and unique[schema.USER_ID].n_unique() == 150
    # like PixelRec: every item was interacted with
    assert set(inter[schema.ITEM_ID]) == set(items[schema.ITEM_ID])
    assert unique.group_by(schema.USER_ID).len()["len"].min() >= 5
    covers = {p.stem for p in (root / schema.RAW_COVERS).iterdir()}
    assert covers <= set(items[schema.ITEM_ID])
    assert all(p.suffix == ".jpg" for p in (root / schema.RAW_COVERS).iterdir())
    assert items[schema.TAG].n_unique() == 6


def test_every_defect_is_present(raw):
    root, inter, items, truth = raw["dir"], raw["inter"], raw["items"], raw["truth_items"]
    ids = set(items[schema.ITEM_ID])
    missing = ids - {p.stem for p in (root / schema.RAW_COVERS).iterdir()}
    assert len(missing) >= 1 and missing == set(truth.filter("missing_cover")[schema.ITEM_ID])
    corrupt = truth.filter("corrupt_cover")[schema.ITEM_ID].to_list()
    assert corrupt
    for item in corrupt:
        with pytest.raises(OSError):
            Image.open(root / schema.RAW_COVERS / f"{item}.jpg").load()
    good = sorted(ids - missing - set(corrupt))[:20]
    for item in good:
        Image.open(root / schema.RAW_COVERS / f"{item}.jpg").load()
    assert items[schema.TITLE].is_null().sum() >= 1  # empty title
    assert any(items[c].is_null().sum() for c in schema.COUNT_COLUMNS)  # missing counts
    assert items["view_number"].str.contains(r"^\d+\.0$").sum() >= 1  # counts written as floats
    non_ascii = items.filter(pl.col(schema.TITLE).str.contains(r"[^\x00-\x7F]"))[schema.TITLE].to_list()
    assert any(re.search(r"[À-ÿ]", t) and re.search(r"[\u3040-\u9fff]", t) for t in non_ascii)
    # a description with commas inside quotes survives a CSV round trip
    text = (root / schema.RAW_ITEMS).read_text(encoding="utf-8")
    assert '""' in text
    with open(root / schema.RAW_ITEMS, encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    assert {len(r) for r in rows} == {len(schema.ITEM_COLUMNS)}
    assert any('"' in r[-1] and "," in r[-1] for r in rows[1:])
    assert inter.height - inter.unique().height >= 1  # duplicated interaction rows


def test_users_concentrate_on_their_topics(raw):
    inter = raw["inter"].unique().join(raw["truth_items"].select(schema.ITEM_ID, "topic"), on=schema.ITEM_ID)
    prefs = raw["user_topics"]
    hit = inter.join(prefs, on=[schema.USER_ID, "topic"], how="left")["weight"].is_not_null().mean()
    # chance: the share of the catalogue in the user's preferred topics
    share = raw["truth_items"].group_by("topic").len().with_columns(pl.col("len") / pl.col("len").sum())
    chance = prefs.join(share, on="topic").group_by(schema.USER_ID).agg(pl.col("len").sum())["len"].mean()
    assert hit > 0.55 and hit > 3 * chance, (hit, chance)


def test_time_order_release_and_cold_items(raw, tiny_split):
    truth = raw["truth_items"]
    inter = raw["inter"].with_columns(pl.col(schema.TIMESTAMP).cast(pl.Int64)).join(
        truth.select(schema.ITEM_ID, "release_timestamp"), on=schema.ITEM_ID)
    assert (inter[schema.TIMESTAMP] >= inter["release_timestamp"]).all()  # never before the release
    start, end = inter[schema.TIMESTAMP].min(), inter[schema.TIMESTAMP].max()
    late = truth.filter(pl.col("release_timestamp") > start + 0.85 * (end - start))
    assert late.height >= 10  # items keep being released to the end of the timeline
    last = inter.sort(schema.TIMESTAMP).group_by(schema.USER_ID).last()
    assert last.filter(pl.col(schema.ITEM_ID).is_in(late[schema.ITEM_ID].implode())).height >= 3
    summary = pl.read_parquet(tiny_split / schema.ITEMS_FILE)
    assert summary[schema.IS_COLD].sum() >= 1


def test_content_carries_the_latent_signal(raw):
    truth, items = raw["truth_items"], raw["items"]
    joined = items.join(truth, on=schema.ITEM_ID)
    # tag is coarser than topic: one tag per topic, several topics per tag
    per_topic = joined.group_by("topic").agg(pl.col(schema.TAG).n_unique())
    per_tag = joined.group_by(schema.TAG).agg(pl.col("topic").n_unique())
    assert per_topic[schema.TAG].max() == 1 and per_tag["topic"].min() > 1
    # a style spans topics of different tags (image alone is ambiguous), image + tag identify the topic
    topics = np.arange(12)
    style = topic_style(topics, 6, 4)
    for s in range(4):
        assert len(set(topics[style == s] % 6)) == (style == s).sum() > 1
    assert len(set(zip(style, topics % 6, strict=True))) == 12
    # counts follow popularity
    views = joined.filter(pl.col("view_number").is_not_null()).select(
        pl.col("view_number").cast(pl.Float64).rank(), pl.col("n_interactions").rank())
    assert np.corrcoef(views["view_number"], views["n_interactions"])[0, 1] > 0.5
    # covers: a nearest-centroid of 8x8 thumbnails recovers the style far above chance (1/4)
    root = raw["dir"] / schema.RAW_COVERS
    ok = truth.filter(~pl.col("missing_cover") & ~pl.col("corrupt_cover"))
    x = np.stack([np.asarray(Image.open(root / f"{i}.jpg").resize((8, 8)), np.float32).ravel()
                  for i in ok[schema.ITEM_ID]])
    y = ok["style"].to_numpy()
    centroids = np.stack([x[y == s].mean(0) for s in range(4)])
    accuracy = (np.argmin(((x[:, None] - centroids[None]) ** 2).sum(-1), 1) == y).mean()
    assert accuracy > 0.6
    # titles use the topic's vocabulary: items of one topic share more words than of different ones
    words = joined.select("topic", pl.col(schema.TITLE).fill_null("").str.to_lowercase().str.split(" "))
    bags = [set(w) for w in words[schema.TITLE]]
    t = words["topic"].to_numpy()
    same = np.mean([len(bags[i] & bags[j]) for i in range(60) for j in range(60) if i != j and t[i] == t[j]])
    diff = np.mean([len(bags[i] & bags[j]) for i in range(60) for j in range(60) if t[i] != t[j]])
    assert same > 1.5 * diff


def test_presets_and_overrides():
    p = SyntheticConfig.from_preset("pixelrec50k", seed=3)
    assert (p.n_users, p.n_items, p.n_interactions, p.n_tags, p.min_per_user) == (50_000, 82_865, 989_494,
                                                                                  108, 5)
    counts = _lognormal_counts(np.random.default_rng(0), p.n_interactions, p.n_users, p.min_per_user,
                               p.user_cap, p.user_activity_sigma)
    assert counts.sum() == 989_494 and counts.min() == 5
    assert abs(counts.mean() - 19.8) < 0.02 and 13 <= np.median(counts) <= 15  # PixelRec50K: 19.8 / 14
    assert SyntheticConfig.from_preset("tiny", seed=1, n_users=99).n_users == 99
    assert PRESETS.names() == ["default", "pixelrec50k", "tiny"]
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['n_user'\]"):
        SyntheticConfig.from_preset("tiny", seed=1, n_user=5)
    with pytest.raises(UnknownNameError, match="valid names are"):
        SyntheticConfig.from_preset("huge", seed=1)
    with pytest.raises(ConfigError, match="n_styles"):
        SyntheticConfig.from_preset("tiny", seed=1, n_styles=1)
