"""Raw data as users hold it: encodings, timestamp units and formats, ties, column order, short rows,
datasets with no test user. Every defect is refused naming file and row, or repaired and counted,
and the counts reach the console."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
import yaml
from real_params import real_section

from pixrec import schema
from pixrec.data.dataset import SplitData
from pixrec.data.raw import RawDataError
from pixrec.data.sources import DataConfig, materialise
from pixrec.data.split import SplitConfig, split_raw
from pixrec.errors import InputError

ROOT = Path(__file__).resolve().parents[1]
ITEMS_HEADER = ",".join(schema.ITEM_COLUMNS)
ITEMS = ITEMS_HEADER + "\n" + "".join(f"i{k},{k},1,2,3,4,5,6,title {k},tag,d\n" for k in range(1, 7))


def local_config(src: Path, **overrides) -> DataConfig:
    """params.yaml's ``data`` section, reading the local copy at ``src``."""
    section = {**real_section("data"), "source": "local", "local_dir": str(src), **overrides}
    return DataConfig.from_params(section)


def write_raw(root: Path, interactions: str, items: str = ITEMS, encoding: str = "utf-8") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / schema.RAW_INTERACTIONS).write_text(interactions, encoding="utf-8")
    (root / schema.RAW_ITEMS).write_bytes(items.encode(encoding))
    return root


def split(raw: Path, out: Path) -> tuple[dict, SplitData]:
    result = split_raw(raw, out, SplitConfig(min_user_interactions=3, cold_cut_quantile=0.9))
    return result, SplitData.load(out)


def test_timestamp_ties_keep_the_file_order(tmp_path):
    """Three ratings saved in one second: the last in the file is the test item, whatever its id."""
    raw = write_raw(tmp_path / "raw", "item_id,user_id,timestamp\ni5,u1,100\ni1,u1,100\ni3,u1,100\n"
                                      "i6,u2,100\ni2,u2,100\ni4,u2,50\n")
    _, data = split(raw, tmp_path / "split")
    ids = data.items[schema.ITEM_ID].to_list()
    assert [ids[i] for i in data.test.items] == ["i3", "i2"]  # sorting by item id would give i5, i6
    assert [ids[i] for i in data.valid.items] == ["i1", "i6"]


def test_seconds_milliseconds_iso_and_negative_timestamps(tmp_path):
    rows = ["i1,u1,1672531200", "i2,u1,1672531300000", "i3,u1,2023-01-01T00:10:00Z",
            "i4,u1,2023-01-01 00:20:00+01:00", "i5,u1,-5", "i6,u1,1e15", "i6,u2,yesterday"]
    raw = write_raw(tmp_path / "raw", "item_id,user_id,timestamp\n" + "\n".join(rows) + "\n")
    result, data = split(raw, tmp_path / "split")
    counts, examples = result["counts"], result["examples"]
    assert counts["interactions: timestamp in milliseconds (divided by 1000)"] == 1
    assert counts["interactions: ISO 8601 timestamp (converted to unix seconds)"] == 2
    assert counts["interactions: negative timestamp (row dropped)"] == 1
    assert examples["interactions: negative timestamp (row dropped)"][0]["_row"] == 6
    assert counts["interactions: timestamp >= 1e+14 (row dropped)"] == 1
    assert counts["interactions: missing or unparsable timestamp"] == 1
    ids = data.items[schema.ITEM_ID].to_list()
    order = sorted(zip(data.train.timestamps.tolist() + data.valid.timestamps.tolist()
                       + data.test.timestamps.tolist(),
                       [ids[i] for i in [*data.train.items, *data.valid.items, *data.test.items]],
                       strict=True))
    # 2023-01-01 00:20 at +01:00 is 23:20 the day before: the earliest of the four
    assert order == [(1672528800, "i4"), (1672531200, "i1"), (1672531300, "i2"), (1672531800, "i3")]


def test_unusable_timestamps_name_the_cause_and_the_users_file(tmp_path):
    src = write_raw(tmp_path / "src", "item_id,user_id,timestamp\ni1,u1,yesterday\ni2,u1,today\n")
    config = local_config(src)
    with pytest.raises(RawDataError) as err:
        materialise(config, tmp_path / "raw")
    message = str(err.value)
    assert str(src / schema.RAW_INTERACTIONS) in message
    assert "2 of 2 rows: missing or unparsable timestamp" in message
    assert "'yesterday'" in message and "ISO 8601" in message


def test_non_utf8_items_are_refused_or_converted_by_data_encoding(tmp_path):
    items = ITEMS.replace("title 1", "Café crème")
    inter = "item_id,user_id,timestamp\n" + "".join(f"i{k},u1,{k}\n" for k in range(1, 4))
    src = write_raw(tmp_path / "src", inter, items, encoding="latin-1")
    with pytest.raises(RawDataError, match=r"item_info\.csv: line 2 .* not valid utf-8.*data\.encoding"):
        split_raw(src, tmp_path / "split", SplitConfig(min_user_interactions=3, cold_cut_quantile=0.9))
    with pytest.raises(RawDataError, match=str(src / schema.RAW_ITEMS)):  # download names the user's file
        materialise(local_config(src), tmp_path / "raw")
    summary = materialise(local_config(src, encoding="latin-1"), tmp_path / "raw")
    assert summary["encoding"] == "iso8859-1" and summary["files_linked"] == 0  # both converted
    _, data = split(tmp_path / "raw", tmp_path / "split")
    assert data.items[schema.TITLE][0] == "Café crème"  # converted, not replaced by U+FFFD


def test_any_column_order_in_download_and_split(tmp_path):
    cols = list(reversed(schema.ITEM_COLUMNS))
    items = pl.read_csv(ITEMS.encode(), infer_schema=False).select(cols).write_csv()
    inter = "timestamp,user_id,item_id,extra\n" + "".join(f"{k},u1,i{k},x\n" for k in range(1, 4))
    src = write_raw(tmp_path / "src", inter, items)
    materialise(local_config(src), tmp_path / "raw")
    _, data = split(tmp_path / "raw", tmp_path / "split")
    assert data.items[schema.TITLE][0] == "title 1" and data.items["view_number"][2] == 3.0
    assert [data.items[schema.ITEM_ID].to_list()[i] for i in data.test.items] == ["i3"]


def test_one_reader_refuses_a_short_row_in_download_and_split_alike(tmp_path):
    src = write_raw(tmp_path / "src", "item_id,user_id,timestamp\ni1,u1,1\ni2,u1\ni3,u1,3\n")
    errors = []
    for run in (lambda: split_raw(src, tmp_path / "s", SplitConfig(min_user_interactions=3,
                                                                   cold_cut_quantile=0.9)),
                lambda: materialise(local_config(src),
                                    tmp_path / "raw")):
        with pytest.raises(RawDataError) as err:
            run()
        errors.append(str(err.value))
    assert errors[0] == errors[1] and "row 3 has 2 fields, the header has 3" in errors[0]


def test_negative_and_non_finite_counts_come_with_example_rows(tmp_path):
    items = ITEMS.replace("i2,2,", "i2,-2,").replace("i4,4,", "i4,inf,").replace("i5,5,", "i5,nan,")
    raw = write_raw(tmp_path / "raw", "item_id,user_id,timestamp\ni1,u1,1\ni2,u1,2\ni3,u1,3\n", items)
    result, data = split(raw, tmp_path / "split")
    kind = "items: view_number negative or non-finite (set missing)"
    assert result["counts"][kind] == 3
    assert [e["_row"] for e in result["examples"][kind]] == [3, 5, 6]
    assert data.items["view_number"].to_list() == [1.0, None, 3.0, None, None, 6.0]


def test_no_test_user_fails_at_split_naming_the_counts(tmp_path):
    raw = write_raw(tmp_path / "raw", "item_id,user_id,timestamp\ni1,u1,1\ni2,u1,2\ni1,u2,1\n")
    with pytest.raises(RawDataError, match=r"no test user: all 2 users have fewer than "
                                           r"split.min_user_interactions = 3 .*at most 2, 3 in all"):
        split_raw(raw, tmp_path / "split", SplitConfig(min_user_interactions=3, cold_cut_quantile=0.9))
    assert not (tmp_path / "split").exists()


def test_split_stage_prints_what_it_dropped(tmp_path):
    raw = write_raw(tmp_path / "raw", "item_id,user_id,timestamp\ni1,u1,1\ni2,u1,2000-01-01\ni3,u1,3\n"
                                      "i4,u1,4\ni5,u1,-4\n")
    params = tmp_path / "params.yaml"
    params.write_text("split:\n  min_user_interactions: 3\n  cold_cut_quantile: 0.9\n")
    proc = subprocess.run([sys.executable, "-m", "stages.split", "--raw", str(raw), "--out",
                           str(tmp_path / "s"), "--params", str(params)],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert "split: 1 interactions: negative timestamp (row dropped) (e.g. row 6)" in proc.stderr
    assert "split: 1 interactions: ISO 8601 timestamp (converted to unix seconds) (e.g. row 3)" in proc.stderr


def test_eval_candidates_above_the_catalogue_blames_the_catalogue(tiny_split):
    from pixrec.negatives import NegativesConfig, sampled_candidates

    data = SplitData.load(tiny_split)
    config = NegativesConfig(sampler="uniform", per_positive=1, epochs=1, seed=1, eval_user_fraction=0.3,
                             eval_candidates=data.n_items)
    with pytest.raises(InputError, match=rf"negatives.eval_candidates = {data.n_items} .* catalogue has "
                                         rf"{data.n_items} items; set it to at most {data.n_items - 1}"):
        sampled_candidates(data, config)


def _items_with(rows: dict[int, str], n: int = 20) -> str:
    """``n`` item rows (``i1`` on line 2), with row ``k``'s line replaced by ``rows[k]``."""
    lines = [f"i{k},{k},1,2,3,4,5,6,title {k},tag,d" for k in range(1, n + 1)]
    for k, line in rows.items():
        lines[k - 1] = line
    return ITEMS_HEADER + "\n" + "\n".join(lines) + "\n"


def _stage(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, cwd=ROOT)


def test_an_unclosed_quote_that_swallows_rows_is_refused_naming_its_line(tmp_path):
    """``"Best of 2023`` on line 5 runs to the stray quote in ``12" vinyl`` on line 17: the field count
    still adds up, and 11 items would vanish into one title. Both stages refuse, naming line 5."""
    inter = "item_id,user_id,timestamp\n" + "".join(f"i{k},u{k % 3},{k}\n" for k in range(1, 21))
    items = _items_with({4: 'i4,4,1,2,3,4,5,6,"Best of 2023,tag,d',
                         16: 'i16,16,1,2,3,4,5,6,12" vinyl,music,d'})
    src = write_raw(tmp_path / "src", inter, items)
    says = (f"{src / schema.RAW_ITEMS}: line 5 (row 5, column title): a quote opens here and the field "
            "runs to line 17, swallowing 11 line(s) that look like rows of their own "
            "(e.g. 'i5,5,1,2,3,4,5,6,title 5,tag,d')")
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"data": {**real_section("data"), "source": "local",
                                               "local_dir": str(src)}}))
    proc = _stage("stages.download", "--out", str(tmp_path / "raw"), "--params", str(params))
    assert proc.returncode == 1 and proc.stderr.startswith(f"error: {says}; close the quote"), proc.stderr
    assert proc.stderr.count("\n") == 1 and not (tmp_path / "raw").exists()
    params.write_text(yaml.safe_dump({"split": real_section("split")}))
    proc = _stage("stages.split", "--raw", str(src), "--out", str(tmp_path / "split"),
                  "--params", str(params))
    assert proc.returncode == 1 and proc.stderr.startswith(f"error: {says}; close the quote"), proc.stderr
    # never closed at all: the row and the line where it starts
    src = write_raw(tmp_path / "src2", inter, _items_with({4: 'i4,4,1,2,3,4,5,6,"Best of 2023,tag,d'}))
    with pytest.raises(RawDataError, match=r"row 5 \(lines 5-21\): malformed CSV \(unexpected end of data; "
                                           r"a quote opened in this row is never closed\)"):
        materialise(local_config(src), tmp_path / "raw")


def test_a_quoted_multi_line_description_is_read_whole(tmp_path):
    """PixelRec descriptions may hold quoted line breaks, commas and lists: that is one field, not rows."""
    text = ('First line, with a comma\nTags: a, b, c, d, e, f, g, h, i, j, k, l\n2023 "best" list:\n'
            '1. one, two')
    quoted = '"' + text.replace('"', '""') + '"'
    items = _items_with({3: f"i3,3,1,2,3,4,5,6,title 3,tag,{quoted}", 7: 'i7,7,1,2,3,4,5,6,"a\nb",tag,d'})
    inter = "item_id,user_id,timestamp\n" + "".join(f"i{k},u1,{k}\n" for k in range(1, 21))
    src = write_raw(tmp_path / "src", inter, items)
    materialise(local_config(src), tmp_path / "raw")
    _, data = split(tmp_path / "raw", tmp_path / "split")
    assert data.items.height == 20
    described = dict(zip(data.items[schema.ITEM_ID], data.items[schema.DESCRIPTION], strict=True))
    assert described["i3"] == text and described["i4"] == "d"
