"""Read and validate the raw PixelRec layout.

Every defect is either repaired and counted in a :class:`RawReport`, or rejected with a
:class:`RawDataError` that names the file, the row (1-based, header = row 1) and the column.
Reading is vectorised polars; no per-row Python.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from pixrec import schema as S

EXAMPLES = 10  # row numbers kept per defect kind in the report


class RawDataError(ValueError):
    """Raw data that cannot be repaired; the message names file, row and column."""


@dataclass
class RawReport:
    """What was dropped or repaired, by kind, with a few example rows for each."""

    counts: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list] = field(default_factory=dict)

    def add(self, kind: str, n: int, examples: list | None = None) -> None:
        if n <= 0:
            return
        self.counts[kind] = self.counts.get(kind, 0) + int(n)
        if examples:
            self.examples.setdefault(kind, []).extend(examples[:EXAMPLES])

    def as_dict(self) -> dict:
        return {"counts": dict(sorted(self.counts.items())), "examples": self.examples}


def _read_csv_text(path: Path, expected: tuple[str, ...]) -> pl.DataFrame:
    """All columns as strings, plus ``_row`` (1-based file row, header = 1). Checks the header."""
    if not path.is_file():
        raise RawDataError(f"{path}: file not found (expected the PixelRec layout)")
    try:
        df = pl.read_csv(
            path,
            infer_schema=False,  # everything Utf8: we parse and count defects ourselves
            empty_string_is_null=True,
            encoding="utf8-lossy",
            quote_char='"',
            truncate_ragged_lines=False,
        )
    except pl.exceptions.PolarsError as exc:  # malformed CSV: say where, not polars' internals
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise RawDataError(f"{path}: not a readable CSV: {_locate_csv_problem(path) or first}") from None
    header = tuple(c.strip().lstrip("\ufeff") for c in df.columns)
    missing = [c for c in expected if c not in header]
    if missing:
        raise RawDataError(
            f"{path}: row 1 (header) lacks column(s) {missing}; found {list(header)}, "
            f"expected {list(expected)}"
        )
    df.columns = list(header)
    return df.select(expected).with_row_index("_row", offset=2)


def _locate_csv_problem(path: Path) -> str | None:
    """On the error path only: scan with the csv module to name the first malformed row."""
    import csv

    with open(path, encoding="utf-8", errors="replace", newline="") as f:
        reader = csv.reader(f, strict=True)
        try:
            header = next(reader)
            for row in reader:
                if row and len(row) != len(header):
                    return (f"row {reader.line_num} has {len(row)} fields, the header has "
                            f"{len(header)}")
        except csv.Error as exc:
            return f"row {reader.line_num}: {exc}"
        except StopIteration:
            return "the file is empty"
    return None


def _examples(df: pl.DataFrame, mask: pl.Expr, cols: list[str]) -> list[dict]:
    return df.filter(mask).head(EXAMPLES).select(["_row", *cols]).to_dicts()


def read_interactions(raw_dir: Path, report: RawReport) -> pl.DataFrame:
    """``item_id, user_id, timestamp`` (Utf8, Utf8, Int64), bad rows dropped and counted."""
    path = Path(raw_dir) / S.RAW_INTERACTIONS
    df = _read_csv_text(path, S.INTERACTION_COLUMNS)
    df = df.with_columns(
        pl.col(S.ITEM_ID).str.strip_chars(),
        pl.col(S.USER_ID).str.strip_chars(),
        pl.col(S.TIMESTAMP).str.strip_chars().cast(pl.Float64, strict=False).alias("_ts"),
    )
    bad_id = pl.col(S.ITEM_ID).is_null() | (pl.col(S.ITEM_ID) == "") | pl.col(S.USER_ID).is_null()
    bad_id = bad_id | (pl.col(S.USER_ID) == "")
    bad_ts = pl.col("_ts").is_null() | pl.col("_ts").is_nan() | pl.col("_ts").is_infinite()
    for kind, mask in (("interactions: empty user_id or item_id", bad_id),
                       ("interactions: missing or non-numeric timestamp", bad_ts & ~bad_id)):
        n = df.select(mask.sum()).item()
        report.add(kind, n, _examples(df, mask, [S.ITEM_ID, S.USER_ID, S.TIMESTAMP]))
    df = df.filter(~(bad_id | bad_ts))
    if df.height == 0:
        raise RawDataError(f"{path}: no valid interaction rows")
    return df.select(
        "_row", S.ITEM_ID, S.USER_ID, pl.col("_ts").floor().cast(pl.Int64).alias(S.TIMESTAMP)
    )


def read_items(raw_dir: Path, report: RawReport) -> pl.DataFrame:
    """Item table with counts as Float64 (null = missing), text as Utf8 (null = empty)."""
    path = Path(raw_dir) / S.RAW_ITEMS
    df = _read_csv_text(path, S.ITEM_COLUMNS)
    df = df.with_columns(pl.col(S.ITEM_ID).str.strip_chars())
    bad_id = pl.col(S.ITEM_ID).is_null() | (pl.col(S.ITEM_ID) == "")
    report.add("items: empty item_id (row dropped)", df.select(bad_id.sum()).item(),
               _examples(df, bad_id, [S.ITEM_ID, S.TITLE]))
    df = df.filter(~bad_id)
    dup = pl.col(S.ITEM_ID).is_duplicated() & ~pl.col(S.ITEM_ID).is_first_distinct()
    report.add("items: duplicated item_id (later row dropped)", df.select(dup.sum()).item(),
               _examples(df, dup, [S.ITEM_ID]))
    df = df.filter(~dup)

    exprs = []
    for col in S.COUNT_COLUMNS:
        text = pl.col(col).str.strip_chars()
        value = text.cast(pl.Float64, strict=False)
        empty = text.is_null() | (text == "")
        unparsable = ~empty & value.is_null()
        negative = value < 0
        report.add(f"items: {col} missing (imputed downstream)", df.select(empty.sum()).item())
        report.add(f"items: {col} not a number (set missing)", df.select(unparsable.sum()).item(),
                   _examples(df, unparsable, [S.ITEM_ID, col]))
        report.add(f"items: {col} negative or non-finite (set missing)",
                   df.select((negative | value.is_infinite() | value.is_nan()).sum()).item(),
                   _examples(df, negative, [S.ITEM_ID, col]))
        ok = value.is_finite() & (value >= 0)
        exprs.append(pl.when(ok).then(value).otherwise(None).alias(col))
    for col in (S.TITLE, S.TAG, S.DESCRIPTION):
        text = pl.col(col).str.strip_chars()
        empty = text.is_null() | (text == "")
        report.add(f"items: empty {col}", df.select(empty.sum()).item())
        exprs.append(pl.when(empty).then(None).otherwise(text).alias(col))
    return df.with_columns(exprs)


def list_covers(raw_dir: Path) -> set[str]:
    """Item ids that have a ``covers/<item_id>.jpg`` file (existence only; decoding is later)."""
    cover_dir = Path(raw_dir) / S.RAW_COVERS
    if not cover_dir.is_dir():
        return set()
    return {name[:-4] for name in os.listdir(cover_dir) if name.endswith(".jpg")}
