"""The temporal split: roles, repairs counted, clear errors, no leakage, determinism."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from real_params import real_config

from pixrec import schema
from pixrec.data.dataset import SplitData
from pixrec.data.raw import RawDataError
from pixrec.data.split import SplitConfig, split_raw

ITEMS_HEADER = ",".join(schema.ITEM_COLUMNS)


def write_raw(root: Path, interactions: str, items: str, covers: tuple[str, ...] = ()) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / schema.RAW_INTERACTIONS).write_text(interactions, encoding="utf-8")
    (root / schema.RAW_ITEMS).write_text(items, encoding="utf-8")
    (root / schema.RAW_COVERS).mkdir(exist_ok=True)
    for item in covers:
        (root / schema.RAW_COVERS / f"{item}.jpg").write_bytes(b"\xff\xd8")
    return root


HAND_INTERACTIONS = """item_id,user_id,timestamp
i1,u1,100
i2,u1,200
i3,u1,300
i1,u2,150
i2,u2,
i4,u2,400
i1,u1,100
i9,u3,5
i1,u3,7
i2,u3,9
i3,u3,11.0
"""
HAND_ITEMS = f"""{ITEMS_HEADER}
i1,10,1,2,3,4,5,6,Hello,music,"a, b"
i2,abc,,2,3,4,5,6,,music,x
i3,5,1,2,3,4,5,6,Café 東京,game,y
i4,5,1,2,3,4,5,6,t,,z
"""


@pytest.fixture()
def hand(tmp_path) -> tuple[dict, SplitData]:
    raw = write_raw(tmp_path / "raw", HAND_INTERACTIONS, HAND_ITEMS, covers=("i1", "i3"))
    report = split_raw(raw, tmp_path / "split", real_config(SplitConfig))
    return report, SplitData.load(tmp_path / "split")


def pairs(part, data: SplitData) -> set[tuple[str, str]]:
    uid = data.users[schema.USER_ID].to_list()
    iid = data.items[schema.ITEM_ID].to_list()
    return {(uid[u], iid[i]) for u, i in zip(part.users.tolist(), part.items.tolist(), strict=True)}


def test_roles_by_time_and_short_users_train_only(hand):
    _, data = hand
    assert pairs(data.test, data) == {("u1", "i3"), ("u3", "i3")}
    assert pairs(data.valid, data) == {("u1", "i2"), ("u3", "i2")}
    # u2 lost its row with an empty timestamp: 2 interactions left, so it only trains
    assert pairs(data.train, data) == {("u1", "i1"), ("u2", "i1"), ("u2", "i4"), ("u3", "i1")}


def test_every_repair_is_counted_with_rows(hand):
    report, data = hand
    counts = report["counts"]
    assert counts["interactions: missing or unparsable timestamp"] == 1
    assert report["examples"]["interactions: missing or unparsable timestamp"][0]["_row"] == 6
    assert counts["interactions: repeated (user, item) pair collapsed to the earliest"] == 1
    assert counts["interactions: item_id not in item_info.csv (dropped)"] == 1
    assert counts["items: view_number not a number (set missing)"] == 1
    assert counts["items: comment_number missing (imputed downstream)"] == 1
    assert counts["items: empty title"] == 1 and counts["items: empty tag"] == 1
    assert counts["items: no cover file (masked by embed-images)"] == 2
    items = data.items
    assert items[schema.TITLE].to_list() == ["Hello", None, "Café 東京", "t"]
    assert items[schema.DESCRIPTION][0] == "a, b"  # the quoted comma survived
    assert items["view_number"].to_list() == [10.0, None, 5.0, 5.0]
    assert items[schema.COVER_PATH].to_list() == ["covers/i1.jpg", None, "covers/i3.jpg", None]
    assert items[schema.TAG_IDX].to_list() == [2, 2, 1, 0]
    # rows kept + rows dropped add up to the file
    kept = len(data.train) + len(data.valid) + len(data.test)
    dropped = sum(v for k, v in counts.items() if k.startswith("interactions:"))
    assert kept + dropped == HAND_INTERACTIONS.count("\n") - 1


def test_cold_items_have_no_training_interaction(hand):
    _, data = hand
    in_train = np.zeros(data.n_items, dtype=bool)
    in_train[data.train.items] = True
    np.testing.assert_array_equal(data.cold_items, ~in_train)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("item_id,user,timestamp\ni1,u1,1\n", r"row 1 \(header\) lacks column\(s\) \['user_id'\]"),
        ("item_id,user_id,timestamp\ni1,u1,1\ni2,u1,2,9\n", "row 3 has 4 fields"),
        ('item_id,user_id,timestamp\ni1,u1,1\n"i2,u1,3\n', "row 3"),
        ("", "empty"),
    ],
)
def test_malformed_interactions_name_file_and_row(tmp_path, content, message):
    raw = write_raw(tmp_path / "raw", content, HAND_ITEMS)
    with pytest.raises(RawDataError, match=message) as err:
        split_raw(raw, tmp_path / "split", real_config(SplitConfig))
    assert str(raw / schema.RAW_INTERACTIONS) in str(err.value)
    assert not (tmp_path / "split").exists()  # nothing half-written


def test_stage_reports_bad_input_in_one_line(tmp_path):
    raw = write_raw(tmp_path / "raw", "item_id,user_id,timestamp\ni1,u1,1\ni2,u1,2,9\n", HAND_ITEMS)
    params = tmp_path / "params.yaml"
    params.write_text("split:\n  min_user_interactions: 3\n  cold_cut_quantile: 0.9\n")
    proc = subprocess.run(
        [sys.executable, "-m", "stages.split", "--raw", str(raw), "--out", str(tmp_path / "s"),
         "--params", str(params)],
        capture_output=True, text=True, cwd=Path(__file__).parents[1],
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().startswith("error:") and "row 3 has 4 fields" in proc.stderr
    assert "Traceback" not in proc.stderr
    params.write_text("split:\n  min_user_interactions: 3\n  cold_cut: 0.9\n")
    proc = subprocess.run(
        [sys.executable, "-m", "stages.split", "--raw", str(raw), "--out", str(tmp_path / "s"),
         "--params", str(params)],
        capture_output=True, text=True, cwd=Path(__file__).parents[1],
    )
    assert proc.returncode == 1 and "split.cold_cut: unknown key" in proc.stderr


def test_tiny_dataset_has_no_leak_and_is_deterministic(tiny_raw, tiny_split, tmp_path):
    data = SplitData.load(tiny_split)
    train = pl.read_parquet(tiny_split / schema.TRAIN_FILE)
    for name in (schema.VALID_FILE, schema.TEST_FILE):
        held = pl.read_parquet(tiny_split / name)
        # no held-out pair in train, and no training interaction of a user after their held-out one
        assert held.join(train, on=[schema.USER_IDX, schema.ITEM_IDX]).height == 0
        later = (held.join(train, on=schema.USER_IDX)
                 .filter(pl.col(schema.TIMESTAMP) >= pl.col("timestamp_right")))
        assert later.height == train.join(held, on=schema.USER_IDX).height  # every train row is earlier
    assert len(data.test) > 0 and data.report["summary"]["n_cold_test"] > 0
    split_raw(tiny_raw, tmp_path / "again", real_config(SplitConfig))

    def digest(d: Path) -> dict[str, str]:
        return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(d.iterdir())}

    assert digest(tiny_split) == digest(tmp_path / "again")
