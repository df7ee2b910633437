"""Read and validate the raw PixelRec layout: the one CSV reader of the download and split stages.

Every defect is either repaired and counted in a :class:`RawReport`, or rejected with a
:class:`RawDataError` that names the file, the row (1-based, header = row 1) and the column. The
download stage validates a user's files with the same functions the split stage reads them with, so
a file is accepted or refused the same way by both. Parsing is pyarrow's CSV reader (strict about
the field count of every row, unlike polars, which pads short rows with nulls) and polars
expressions; no per-row Python.

Conventions, documented in docs/data.md ("What the CSVs may hold"):

- the header names the columns; any order is accepted and extra columns are ignored;
- the file is UTF-8 (``data/raw`` always is: the download stage converts a file in the encoding that
  ``data.encoding`` declares); an invalid byte is an error naming the line, never a silent
  replacement character;
- ``timestamp``: unix seconds; values >= 1e11 are taken as milliseconds and divided by 1000 (counted);
  ISO 8601 strings (``2023-01-05T10:00:00Z``, ``2023-01-05 10:00:00+08:00``, ``2023-01-05``; no
  offset = UTC) are converted (counted); negative or >= 1e14 values are dropped (counted, with rows).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from pixrec import schema
from pixrec.errors import InputError

EXAMPLES = 10  # row numbers kept per defect kind in the report
COVER_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")  # case-insensitive; earlier wins for one item id
MS_FROM = 1e11  # a unix time in seconds this large is year 5138: the value is in milliseconds
TS_LIMIT = 1e14  # ... and one this large is not a plausible time in seconds or milliseconds
ISO_FORMATS = ("%Y-%m-%dT%H:%M:%S%.f%#z", "%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M%#z", "%Y-%m-%dT%H:%M",
               "%Y-%m-%d")


class RawDataError(InputError):
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

    def add_mask(self, kind: str, df: pl.DataFrame, mask: pl.Expr, cols: list[str]) -> None:
        """Count the rows of ``df`` where ``mask`` holds, with example rows showing ``cols``."""
        self.add(kind, df.select(mask.fill_null(False).sum()).item(), _examples(df, mask, cols))

    def as_dict(self) -> dict:
        return {"counts": dict(sorted(self.counts.items())), "examples": self.examples}

    def lines(self) -> list[str]:
        """One line per kind, with the first example rows: what a stage prints on the console."""
        out = []
        for kind, n in sorted(self.counts.items()):
            rows = [e["_row"] for e in self.examples.get(kind, []) if isinstance(e, dict) and "_row" in e]
            out.append(f"{n:,} {kind}" + (f" (e.g. row {', '.join(map(str, rows[:5]))})" if rows else ""))
        return out


# --- the CSV reader -------------------------------------------------------------------------------------
def read_header(path: Path, expected: tuple[str, ...], encoding: str = "utf-8") -> list[str]:
    """The header's column names (stripped, BOM removed); every ``expected`` name must be there."""
    import csv

    if not Path(path).is_file():
        raise RawDataError(f"{path}: file not found (expected the PixelRec layout)")
    try:
        with open(path, encoding=encoding, newline="") as f:
            header = next(csv.reader(f), None)
    except UnicodeDecodeError:
        raise RawDataError(_not_decodable(Path(path), encoding)) from None
    except csv.Error as exc:
        raise RawDataError(f"{path}: row 1 (header): malformed CSV ({exc})") from None
    if not header:
        raise RawDataError(f"{path}: the file is empty; expected the header {','.join(expected)}")
    header = [h.strip().lstrip("\ufeff").strip() for h in header]
    missing = [c for c in expected if c not in header]
    if missing:
        raise RawDataError(f"{path}: row 1 (header) lacks column(s) {missing}; found {header}, expected "
                           f"{list(expected)} (in any order)")
    twice = sorted({c for c in header if header.count(c) > 1})
    if twice:
        raise RawDataError(f"{path}: row 1 (header) names column(s) {twice} more than once")
    return header


def read_csv_text(path: Path, expected: tuple[str, ...], encoding: str = "utf-8") -> pl.DataFrame:
    """The ``expected`` columns as strings (empty = ``""``) plus ``_row`` (1-based file row, header = 1).

    Every row must have as many fields as the header; a file with no data row is an error.
    ``encoding`` is the file's (``utf-8`` for ``data/raw``); undecodable bytes name their line.
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv

    path = Path(path)
    header = read_header(path, expected, encoding)
    try:
        table = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(skip_rows=1, column_names=header, encoding=encoding),
            parse_options=pacsv.ParseOptions(newlines_in_values=True, ignore_empty_lines=True),
            convert_options=pacsv.ConvertOptions(
                column_types={c: pa.string() for c in header}, include_columns=list(expected),
                strings_can_be_null=False, quoted_strings_can_be_null=False, check_utf8=True),
        )
    except pa.ArrowInvalid as exc:  # malformed CSV: say where, not pyarrow's internals
        if "UTF8" in str(exc) or "utf8" in str(exc).lower():
            raise RawDataError(_not_decodable(path, encoding)) from None
        first = str(exc).strip().splitlines()[0]
        raise RawDataError(f"{path}: not a readable CSV: {_locate_csv_problem(path, encoding) or first}"
                           ) from None
    if table.num_rows == 0:
        raise RawDataError(f"{path}: no data rows after the header")
    df = pl.from_arrow(table).select(expected).with_row_index("_row", offset=2)
    _refuse_swallowed_rows(df, path, header, encoding)
    return df


def _swallowed_row(n_fields: int) -> str:
    """A line break inside a field followed by what looks like a whole row of its own: an id (no space,
    quote or comma) and at least ``n_fields - 1`` delimiters on that line. Prose in a legitimately
    quoted multi-line description does not look like that; the rows after an unclosed quote do."""
    return r'\n[^\s,"]{1,64}(?:,[^,\n]*){%d}' % (n_fields - 1)


def _refuse_swallowed_rows(df: pl.DataFrame, path: Path, header: list[str], encoding: str) -> None:
    """An unclosed quote (``"Best of 2023``) makes the reader take every line up to the next quote as
    one field: those rows vanish, the row is corrupted, and the field count can still add up. Refuse
    it, naming the line where the quote opens (a vectorised check; the locating scan runs on the error
    path only)."""
    pattern = _swallowed_row(len(header))
    hits = df.select(pl.struct("_row", *(pl.col(c).str.contains(pattern).alias(c) for c in df.columns[1:]))
                     .alias("hit")).unnest("hit")
    hit = hits.filter(pl.any_horizontal(pl.exclude("_row"))).head(1)
    if hit.height:
        row = hit["_row"].item()
        column = next(c for c in hit.columns[1:] if hit[c].item())
        raise RawDataError(_locate_swallowed(path, encoding, header, row, column, pattern))


def _locate_swallowed(path: Path, encoding: str, header: list[str], row: int, column: str, pattern: str
                      ) -> str:
    """On the error path only: the error line for field ``column`` of ``row``, with the line where its
    quote opens found by a scan with the csv module (which splits quotes as pyarrow does)."""
    import csv
    import re

    advice = ('close the quote, or double a quote that belongs to the text ("")')
    with open(path, encoding=encoding, errors="replace", newline="") as f:
        reader = csv.reader(f)
        n, before = 0, 0
        for fields in reader:
            n += bool(fields)  # blank lines are no row, as in pyarrow's reading
            if n == row and len(fields) == len(header):
                j = header.index(column)
                opens = before + 1 + sum(v.count("\n") for v in fields[:j])
                swallowed = [m.group(0)[1:] for m in re.finditer(pattern, fields[j])]
                return (f"{path}: line {opens} (row {row}, column {column}): a quote opens here and the "
                        f"field runs to line {reader.line_num}, swallowing {len(swallowed)} line(s) that "
                        f"look like rows of their own (e.g. {swallowed[0][:60]!r}); {advice}")
            if n >= row:
                break
            before = reader.line_num
    return (f"{path}: row {row}, column {column}: the field spans several lines that look like rows of "
            f"their own (an unclosed quote?); {advice}")


def _not_decodable(path: Path, encoding: str) -> str:
    """On the error path only: the line and byte of the first undecodable character."""
    data = path.read_bytes()
    try:
        data.decode(encoding)
        where = "a byte sequence"
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        where = f"line {line} (byte offset {exc.start}: {data[exc.start:exc.start + 4]!r})"
    return (f"{path}: {where} is not valid {encoding}; if the file is in another encoding, name it in "
            f"params.yaml data.encoding (e.g. latin-1, cp1252, gb18030)")


def _locate_csv_problem(path: Path, encoding: str) -> str | None:
    """On the error path only: scan with the csv module to name the first malformed row."""
    import csv

    def lines(start: int, end: int) -> str:  # a quoted field can span lines: name where the row starts
        return f"line {end}" if start == end else f"lines {start}-{end}"

    with open(path, encoding=encoding, errors="replace", newline="") as f:
        reader = csv.reader(f, strict=True)
        row, before = 1, 1
        try:
            header = next(reader)
            for fields in reader:
                row += 1
                if fields and len(fields) != len(header):
                    where = f"row {row}" + (f" ({lines(before + 1, reader.line_num)})"
                                            if reader.line_num != row else "")
                    return (f"{where} has {len(fields)} fields, the header has {len(header)}: "
                            f"{','.join(fields)[:120]!r}")
                before = reader.line_num
        except csv.Error as exc:
            hint = "; a quote opened in this row is never closed" if "end of data" in str(exc) else ""
            return f"row {row + 1} ({lines(before + 1, reader.line_num)}): malformed CSV ({exc}{hint})"
        except StopIteration:
            return "the file is empty"
    return None


def _examples(df: pl.DataFrame, mask: pl.Expr, cols: list[str]) -> list[dict]:
    return df.filter(mask.fill_null(False)).head(EXAMPLES).select(["_row", *cols]).to_dicts()


# --- interactions ---------------------------------------------------------------------------------------
def _iso_seconds(text: pl.Expr) -> pl.Expr:
    """ISO 8601 string -> float unix seconds (null where no format matches); no offset = UTC."""
    iso = text.str.replace(" ", "T", literal=True)
    parsed = [iso.str.to_datetime(f, strict=False, time_zone="UTC", time_unit="us") for f in ISO_FORMATS]
    return pl.coalesce(parsed).dt.epoch("us").cast(pl.Float64) / 1e6


def _timestamps(df: pl.DataFrame, report: RawReport) -> pl.DataFrame:
    """Add ``_ts`` (float seconds, null = unusable), counting ISO strings and millisecond values."""
    text = pl.col(schema.TIMESTAMP).str.strip_chars()
    df = df.with_columns(text.cast(pl.Float64, strict=False).alias("_num"))
    is_text = pl.col("_num").is_null() & (text != "")
    if df.select(is_text.any()).item():
        df = df.with_columns(pl.when(is_text).then(_iso_seconds(text)).alias("_iso"))
        report.add_mask("interactions: ISO 8601 timestamp (converted to unix seconds)", df,
                        pl.col("_iso").is_not_null(), [schema.TIMESTAMP])
        df = df.with_columns(pl.coalesce("_num", "_iso").alias("_num"))
    ms = (pl.col("_num") >= MS_FROM) & (pl.col("_num") < TS_LIMIT)
    report.add_mask("interactions: timestamp in milliseconds (divided by 1000)", df, ms, [schema.TIMESTAMP])
    return df.with_columns(pl.when(ms).then(pl.col("_num") / 1000.0).otherwise(pl.col("_num")).alias("_ts"))


def read_raw_interactions(path: Path, report: RawReport, encoding: str = "utf-8") -> pl.DataFrame:
    """``_row, item_id, user_id, timestamp`` (UInt32, Utf8, Utf8, Int64 seconds), bad rows dropped and
    counted; no usable row at all is an error naming the commonest cause."""
    return parse_interactions(read_csv_text(path, schema.INTERACTION_COLUMNS, encoding), Path(path), report)


def parse_interactions(df: pl.DataFrame, path: Path, report: RawReport) -> pl.DataFrame:
    """:func:`read_raw_interactions` on the text table ``df`` already read from ``path``."""
    df = df.with_columns(pl.col(schema.ITEM_ID).str.strip_chars(), pl.col(schema.USER_ID).str.strip_chars())
    df = _timestamps(df, report)
    cols = [schema.ITEM_ID, schema.USER_ID, schema.TIMESTAMP]
    bad_id = (pl.col(schema.ITEM_ID) == "") | (pl.col(schema.USER_ID) == "")
    ts = pl.col("_ts")
    unparsable = ts.is_null() | ts.is_nan() | ts.is_infinite()
    negative = ~unparsable & (ts < 0)
    too_large = ~unparsable & (pl.col("_num") >= TS_LIMIT)
    drops = {"interactions: empty user_id or item_id": bad_id,
             "interactions: missing or unparsable timestamp": unparsable & ~bad_id,
             "interactions: negative timestamp (row dropped)": negative & ~bad_id,
             f"interactions: timestamp >= {TS_LIMIT:.0e} (row dropped)": too_large & ~bad_id}
    for kind, mask in drops.items():
        report.add_mask(kind, df, mask, cols)
    keep = ~(bad_id | unparsable | negative | too_large)
    if df.select(keep.sum()).item() == 0:
        raise RawDataError(f"{path}: no usable interaction row; " + _commonest(df, report, list(drops)))
    return df.filter(keep).select("_row", schema.ITEM_ID, schema.USER_ID,
                                  pl.col("_ts").floor().cast(pl.Int64).alias(schema.TIMESTAMP))


def _commonest(df: pl.DataFrame, report: RawReport, kinds: list[str]) -> str:
    """Why every row was dropped, in words: the commonest drop kind with its first example."""
    kind, n = max(((k, report.counts.get(k, 0)) for k in kinds), key=lambda kv: kv[1])
    example = (report.examples.get(kind) or [{}])[0]
    return (f"{n:,} of {df.height:,} rows: {kind.removeprefix('interactions: ')} (e.g. {example}); "
            "timestamps must be unix seconds or milliseconds, or ISO 8601 dates")


# --- items ------------------------------------------------------------------------------------------------
def read_raw_items(path: Path, report: RawReport, encoding: str = "utf-8") -> pl.DataFrame:
    """Item table with counts as Float64 (null = missing), text as Utf8 (null = empty)."""
    return parse_items(read_csv_text(Path(path), schema.ITEM_COLUMNS, encoding), report)


def parse_items(df: pl.DataFrame, report: RawReport) -> pl.DataFrame:
    """:func:`read_raw_items` on the text table ``df`` already read."""
    df = df.with_columns(pl.col(schema.ITEM_ID).str.strip_chars())
    bad_id = pl.col(schema.ITEM_ID) == ""
    report.add_mask("items: empty item_id (row dropped)", df, bad_id, [schema.ITEM_ID, schema.TITLE])
    df = df.filter(~bad_id)
    dup = pl.col(schema.ITEM_ID).is_duplicated() & ~pl.col(schema.ITEM_ID).is_first_distinct()
    report.add_mask("items: duplicated item_id (later row dropped)", df, dup, [schema.ITEM_ID])
    df = df.filter(~dup)

    exprs = []
    for col in schema.COUNT_COLUMNS:
        text = pl.col(col).str.strip_chars()
        value = text.cast(pl.Float64, strict=False)
        empty = text == ""
        report.add(f"items: {col} missing (imputed downstream)", df.select(empty.sum()).item())
        report.add_mask(f"items: {col} not a number (set missing)", df, ~empty & value.is_null(),
                        [schema.ITEM_ID, col])
        report.add_mask(f"items: {col} negative or non-finite (set missing)", df,
                        (value < 0) | value.is_infinite() | value.is_nan(), [schema.ITEM_ID, col])
        ok = value.is_finite() & (value >= 0)
        exprs.append(pl.when(ok).then(value).otherwise(None).alias(col))
    for col in (schema.TITLE, schema.TAG, schema.DESCRIPTION):
        text = pl.col(col).str.strip_chars()
        report.add(f"items: empty {col}", df.select((text == "").sum()).item())
        exprs.append(pl.when(text == "").then(None).otherwise(text).alias(col))
    return df.with_columns(exprs)


# --- covers -----------------------------------------------------------------------------------------------
def is_cover_name(name: str) -> bool:
    """``<item_id>.<jpg|jpeg|png|webp>`` in any letter case, not a hidden file."""
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in COVER_SUFFIXES


def list_covers(raw_dir: Path, report: RawReport | None = None) -> dict[str, str]:
    """``{item_id: file name}`` of the files in ``covers/`` (existence only; decoding is later).

    Where one item has several (``i1.jpg`` and ``i1.png``), the first suffix of
    :data:`COVER_SUFFIXES` wins and the others are counted.
    """
    return list_cover_files(Path(raw_dir) / schema.RAW_COVERS, report)


def list_cover_files(cover_dir: Path, report: RawReport | None = None) -> dict[str, str]:
    """:func:`list_covers` of any folder of ``<item_id>.<suffix>`` files (``pixrec score-new --covers``)."""
    if not cover_dir.is_dir():
        return {}
    rank = {suffix: i for i, suffix in enumerate(COVER_SUFFIXES)}
    names = sorted((n for n in os.listdir(cover_dir) if is_cover_name(n)),
                   key=lambda n: (os.path.splitext(n)[0], rank[os.path.splitext(n)[1].lower()], n))
    chosen: dict[str, str] = {}
    for name in names:
        chosen.setdefault(os.path.splitext(name)[0], name)
    if report is not None:
        extra = sorted(set(names) - set(chosen.values()))
        report.add(f"covers: several files for one item (kept the first of {list(COVER_SUFFIXES)})",
                   len(extra), [{"file": n} for n in extra])
    return chosen


__all__ = ["COVER_SUFFIXES", "RawDataError", "RawReport", "is_cover_name", "list_cover_files", "list_covers",
           "parse_interactions", "parse_items", "read_csv_text", "read_header", "read_raw_interactions",
           "read_raw_items"]
