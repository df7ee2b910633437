"""A file of new items (``item_info.csv``'s columns, or such a frame), read and checked as the split
reads the catalogue's, and its defects noted by item: what ``pixrec score-new`` does before it loads any
model or encoder, so a wrong file is refused in well under a second.

A defect refuses the batch only when the file itself is wrong (a missing column, an id given twice or
already in the catalogue); a missing count, an empty field, a tag the catalogue never had, a missing
cover is imputed or masked and noted with the ids it concerns (:class:`Notes`), each note saying which
model input it touches, so a command shows the notes that matter to its model.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from pathlib import Path

import polars as pl

from pixrec import schema
from pixrec.data.raw import RawReport, list_cover_files, parse_items, read_csv_text
from pixrec.errors import InputError

INPUTS = ("tag", "counts", "text", "image")  # the content inputs an item tower may read
SHOWN_IDS = 10  # item ids named per note; the rest are counted


class Notes:
    """What was repaired or masked, by reason: the items concerned (in file order) and the model
    inputs the reason touches (none: it always matters), so a caller shows what its model reads."""

    def __init__(self) -> None:
        self._ids: dict[str, list[str]] = {}
        self._count: dict[str, int] = {}
        self._touches: dict[str, tuple[str, ...]] = {}

    def add(self, reason: str, item_ids: Sequence[str], touches: tuple[str, ...] = (),
            count: int | None = None) -> None:
        """``count``: how many items in all, when ``item_ids`` are only the first of them."""
        if len(item_ids):
            self._ids.setdefault(reason, []).extend(item_ids)
            self._count[reason] = self._count.get(reason, 0) + (len(item_ids) if count is None else count)
            self._touches[reason] = touches

    def lines(self, reads: Collection[str] = INPUTS) -> list[str]:
        """``id, id, ...: reason`` for each reason that touches an input in ``reads`` (or none)."""
        out = []
        for reason, ids in self._ids.items():
            touches = self._touches[reason]
            if touches and not set(touches) & set(reads):
                continue
            shown = ids[:SHOWN_IDS]
            more = self._count[reason] - len(shown)
            out.append(f"{', '.join(shown)}{f' and {more:,} more' if more > 0 else ''}: {reason}")
        return out


def _text_table(source: pl.DataFrame | Path | str) -> tuple[pl.DataFrame, str]:
    """The item columns as strings with ``_row`` (file row, header = 1), and how to name the source."""
    if not isinstance(source, pl.DataFrame):
        return read_csv_text(Path(source), schema.ITEM_COLUMNS), str(source)
    missing = [c for c in schema.ITEM_COLUMNS if c not in source.columns]
    if missing:
        raise InputError(f"new items: missing column(s) {missing}; expected the item_info.csv columns "
                         f"{list(schema.ITEM_COLUMNS)}")
    if source.height == 0:
        raise InputError("new items: the frame has no rows")
    text = source.select(pl.col(c).cast(pl.Utf8).fill_null("") for c in schema.ITEM_COLUMNS)
    return text.with_row_index("_row", offset=1), "new items"


def _field_notes(items: pl.DataFrame, text: pl.DataFrame, notes: Notes) -> None:
    """Counts missing or unusable, empty text fields: by column, the items concerned."""
    raw = text.select("_row", *(pl.col(c).str.strip_chars().alias(f"_raw_{c}") for c in schema.COUNT_COLUMNS))
    x = items.join(raw, on="_row", how="left", maintain_order="left").with_columns(
        pl.all_horizontal(pl.col(c).is_null() for c in schema.COUNT_COLUMNS).alias("_none"))
    notes.add("no counts (the counts input is absent)", x.filter("_none")[schema.ITEM_ID].to_list(),
              ("counts",))
    kinds = {"missing (imputed with the training items' mean)":
             lambda c: ~pl.col("_none") & (pl.col(f"_raw_{c}") == ""),
             "not a non-negative number (set missing, imputed)":
             lambda c: (pl.col(f"_raw_{c}") != "") & pl.col(c).is_null()}
    for kind, test in kinds.items():
        columns: dict[tuple[str, ...], list[str]] = {}  # the same items -> one note naming every column
        for c in schema.COUNT_COLUMNS:
            if ids := tuple(x.filter(test(c))[schema.ITEM_ID].to_list()):
                columns.setdefault(ids, []).append(c)
        for ids, cols in columns.items():
            notes.add(f"{', '.join(cols)} {kind}", list(ids), ("counts",))
    for col in (schema.TITLE, schema.TAG, schema.DESCRIPTION):
        touches = ("tag", "text") if col == schema.TAG else ("text",)
        notes.add(f"empty {col}", items.filter(pl.col(col).is_null())[schema.ITEM_ID].to_list(), touches)


def read_new_items(
    source: pl.DataFrame | Path | str, catalogue: pl.DataFrame, covers_dir: Path | None
) -> tuple[pl.DataFrame, Notes]:
    """The items of ``source`` (an item_info.csv-layout file or frame, parsed as the split parses the
    catalogue's), with ``tag_idx`` from the catalogue's tags (0 = a tag it never had) and
    ``cover_path`` (file name in ``covers_dir``, null when there is none), and the notes on them. An id
    already in the catalogue or given twice is an error; so is a missing column. Reads no model."""
    text, path = _text_table(source)
    report = RawReport()
    items = parse_items(text, report)
    if twice := report.counts.get("items: duplicated item_id (later row dropped)"):
        raise InputError(f"{path}: {twice} item_id(s) given twice; give each new item once")
    if items.height == 0:
        raise InputError(f"{path}: no row has an item_id")
    known = items.filter(pl.col(schema.ITEM_ID).is_in(catalogue[schema.ITEM_ID].implode()))
    if known.height:
        raise InputError(f"{path}: item {known[schema.ITEM_ID][0]!r} is already in the catalogue "
                         f"({known.height} such); score-new places new items, `pixrec similar` known ones")
    notes = Notes()
    dropped = report.examples.get("items: empty item_id (row dropped)", [])
    notes.add("empty item_id (row dropped)", [f"row {e['_row']}" for e in dropped])
    _field_notes(items, text, notes)
    tags = catalogue.filter(pl.col(schema.TAG_IDX) > 0).select(schema.TAG, schema.TAG_IDX).unique(schema.TAG)
    items = items.join(tags, on=schema.TAG, how="left", maintain_order="left").with_columns(
        pl.col(schema.TAG_IDX).fill_null(0))
    unknown = items.filter(pl.col(schema.TAG).is_not_null() & (pl.col(schema.TAG_IDX) == 0))
    notes.add("a tag the catalogue never had (no tag input)", unknown[schema.ITEM_ID].to_list(), ("tag",))
    if covers_dir is not None and not Path(covers_dir).is_dir():
        raise InputError(f"{covers_dir}: no such covers directory (expected <item_id>.jpg files)")
    covers = list_cover_files(Path(covers_dir)) if covers_dir is not None else {}
    items = items.with_columns(pl.col(schema.ITEM_ID)
                               .replace_strict(covers, default=None, return_dtype=pl.Utf8)
                               .alias(schema.COVER_PATH))
    where = f"no <item_id>.jpg in {covers_dir}" if covers_dir is not None else "no covers folder given"
    notes.add(f"no cover file ({where}; image masked)",
              items.filter(pl.col(schema.COVER_PATH).is_null())[schema.ITEM_ID].to_list(), ("image",))
    return items.drop("_row"), notes
