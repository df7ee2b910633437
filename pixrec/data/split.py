"""Per-user temporal leave-last-out split with integer-indexed user and item tables.

Per user, interactions are ordered by timestamp; interactions that share a timestamp (a batch of
ratings saved in one second) keep their order in the interactions file: the sort is stable on
(user, timestamp, file row), so the file, not the item id, decides which one is last. The last is
test, the second-to-last validation, the rest train; users with fewer than ``min_user_interactions``
only train. An item is *cold* when it has no training interaction; *late* when first seen after the
global cut time. A dataset that leaves no test user fails here, naming the counts, rather than
downstream.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from pixrec import schema
from pixrec.config import ConfigError, section
from pixrec.data.raw import RawDataError, RawReport, list_covers, read_raw_interactions, read_raw_items
from pixrec.atomic import atomic_dir

ROLES = ("train", "valid", "test")


@section
class SplitConfig:
    """The ``split`` section of params.yaml."""

    min_user_interactions: int
    cold_cut_quantile: float

    def __post_init__(self) -> None:
        if self.min_user_interactions < 3:
            raise ConfigError("split.min_user_interactions must be >= 3 (train, valid and test)")
        if not 0.0 < self.cold_cut_quantile <= 1.0:
            raise ConfigError("split.cold_cut_quantile must be in (0, 1]")


def _interactions_with_items(raw_dir: Path, report: RawReport) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Valid interactions of known items, each (user, item) pair once (the earliest), and the items."""
    inter = read_raw_interactions(Path(raw_dir) / schema.RAW_INTERACTIONS, report)
    items = read_raw_items(Path(raw_dir) / schema.RAW_ITEMS, report)
    unknown = ~pl.col(schema.ITEM_ID).is_in(items[schema.ITEM_ID].implode())
    report.add_mask("interactions: item_id not in item_info.csv (dropped)", inter, unknown, [schema.ITEM_ID])
    inter = inter.filter(~unknown)
    # exact duplicate (user, item) pairs: keep the earliest (file order among equal times)
    inter = inter.sort([schema.USER_ID, schema.ITEM_ID, schema.TIMESTAMP, "_row"])
    dup = pl.struct(schema.USER_ID, schema.ITEM_ID).is_first_distinct().not_()
    report.add_mask("interactions: repeated (user, item) pair collapsed to the earliest", inter, dup,
                    [schema.USER_ID, schema.ITEM_ID])
    inter = inter.filter(~dup)
    if inter.height == 0:
        raise RawDataError(f"{raw_dir / schema.RAW_INTERACTIONS}: no interaction left after validation "
                           f"({report.lines()})")
    return inter, items


def _index(inter: pl.DataFrame, items: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Integer ids from sorted strings (the same data gives the same indices): users, items, and the
    interactions as ``user_idx, item_idx, timestamp, _row``."""
    users = inter.select(schema.USER_ID).unique().sort(schema.USER_ID).with_row_index(schema.USER_IDX)
    users = users.with_columns(pl.col(schema.USER_IDX).cast(pl.Int32))
    items = items.sort(schema.ITEM_ID).with_row_index(schema.ITEM_IDX).with_columns(pl.col(schema.ITEM_IDX).cast(pl.Int32))
    inter = (
        inter.join(users, on=schema.USER_ID, how="left")
        .join(items.select(schema.ITEM_ID, schema.ITEM_IDX), on=schema.ITEM_ID, how="left")
        .select(schema.USER_IDX, schema.ITEM_IDX, schema.TIMESTAMP, "_row")
    )
    return users, items, inter


def _assign_roles(inter: pl.DataFrame, config: SplitConfig, report: RawReport) -> pl.DataFrame:
    """Leave-last-out by time, stable on file row: adds ``_n`` (per-user count) and ``_role``."""
    inter = inter.sort([schema.USER_IDX, schema.TIMESTAMP, "_row"])
    inter = inter.with_columns(
        pl.len().over(schema.USER_IDX).alias("_n"),
        (pl.int_range(pl.len()).over(schema.USER_IDX)).alias("_pos"),
    )
    eligible = pl.col("_n") >= config.min_user_interactions
    role = (
        pl.when(eligible & (pl.col("_pos") == pl.col("_n") - 1)).then(pl.lit("test"))
        .when(eligible & (pl.col("_pos") == pl.col("_n") - 2)).then(pl.lit("valid"))
        .otherwise(pl.lit("train"))
    )
    inter = inter.with_columns(role.alias("_role"))
    n_short = inter.filter(~eligible).select(schema.USER_IDX).n_unique()
    report.add(f"users with < {config.min_user_interactions} interactions (train only)", n_short)
    return inter


def _require_test_users(inter: pl.DataFrame, raw_dir: Path, config: SplitConfig) -> None:
    """No user with enough interactions: nothing to evaluate, so stop here with the counts."""
    if inter.select((pl.col("_role") == "test").any()).item():
        return
    per_user = inter.group_by(schema.USER_IDX).agg(pl.len())["len"]
    raise RawDataError(
        f"{raw_dir / schema.RAW_INTERACTIONS}: no test user: all {per_user.len():,} users have fewer than "
        f"split.min_user_interactions = {config.min_user_interactions} valid interactions (at most "
        f"{per_user.max()}, {inter.height:,} in all); each test user needs a train, a validation and a "
        "test interaction")


def _item_table(items: pl.DataFrame, inter: pl.DataFrame, train: pl.DataFrame, raw_dir: Path,
                config: SplitConfig, report: RawReport) -> tuple[pl.DataFrame, int, int]:
    """Items with training counts, first sighting, tag index, cover path, cold / late flags;
    also the cut timestamp and the number of tags."""
    cut = inter.select(pl.col(schema.TIMESTAMP).quantile(config.cold_cut_quantile, "nearest")).item()
    n_train_items = train.group_by(schema.ITEM_IDX).agg(pl.len().cast(pl.Int32).alias(schema.N_TRAIN))
    first_seen = inter.group_by(schema.ITEM_IDX).agg(pl.col(schema.TIMESTAMP).min().alias(schema.FIRST_SEEN))
    covers = list_covers(raw_dir, report)
    cover_files = pl.DataFrame({schema.ITEM_ID: list(covers), "_cover": list(covers.values())},
                               schema={schema.ITEM_ID: pl.Utf8, "_cover": pl.Utf8})
    tags = items.select(pl.col(schema.TAG).drop_nulls().unique().sort()).to_series().to_list()
    tag_index = pl.DataFrame({schema.TAG: tags, schema.TAG_IDX: list(range(1, len(tags) + 1))},
                             schema={schema.TAG: pl.Utf8, schema.TAG_IDX: pl.Int32})
    items = (
        items.join(n_train_items, on=schema.ITEM_IDX, how="left")
        .join(first_seen, on=schema.ITEM_IDX, how="left")
        .join(tag_index, on=schema.TAG, how="left")
        .join(cover_files, on=schema.ITEM_ID, how="left")
        .with_columns(
            pl.col(schema.N_TRAIN).fill_null(0),
            pl.col(schema.TAG_IDX).fill_null(0),
            (pl.lit(schema.RAW_COVERS + "/") + pl.col("_cover")).alias(schema.COVER_PATH),
        )
        .with_columns(
            (pl.col(schema.N_TRAIN) == 0).alias(schema.IS_COLD),
            (pl.col(schema.FIRST_SEEN) > cut).fill_null(False).alias("is_late"),
        )
        .sort(schema.ITEM_IDX)
        .select(schema.ITEM_IDX, schema.ITEM_ID, schema.TAG, schema.TAG_IDX, *schema.COUNT_COLUMNS, schema.TITLE,
                schema.DESCRIPTION, schema.COVER_PATH, schema.N_TRAIN, schema.FIRST_SEEN, schema.IS_COLD, "is_late")
    )
    report.add("items: no cover file (masked by embed-images)", items[schema.COVER_PATH].null_count())
    report.add("items: no interaction at all (kept in the catalogue)", items[schema.FIRST_SEEN].null_count())
    return items, int(cut), len(tags)


def _user_table(users: pl.DataFrame, parts: dict[str, pl.DataFrame]) -> pl.DataFrame:
    user_train = parts["train"].group_by(schema.USER_IDX).agg(pl.len().cast(pl.Int32).alias(schema.N_TRAIN))
    return (
        users.join(user_train, on=schema.USER_IDX, how="left")
        .with_columns(
            pl.col(schema.N_TRAIN).fill_null(0),
            pl.col(schema.USER_IDX).is_in(parts["test"][schema.USER_IDX].implode()).alias(schema.IS_TEST_USER),
        )
        .sort(schema.USER_IDX)
    )


def _summary(users: pl.DataFrame, items: pl.DataFrame, parts: dict[str, pl.DataFrame], cut: int,
             n_tags: int) -> dict:
    test_cold = parts["test"].join(items.select(schema.ITEM_IDX, schema.IS_COLD, "is_late"), on=schema.ITEM_IDX)
    return {
        "n_users": users.height,
        "n_items": items.height,
        "n_tags": n_tags,
        "n_interactions": sum(p.height for p in parts.values()),
        **{f"n_{role}": parts[role].height for role in ROLES},
        "n_cold_items": int(items[schema.IS_COLD].sum()),
        "n_late_items": int(items["is_late"].sum()),
        "n_cold_test": int(test_cold[schema.IS_COLD].sum()),
        "n_cold_test_late": int((test_cold[schema.IS_COLD] & test_cold["is_late"]).sum()),
        "cold_cut_timestamp": cut,
    }


def split_raw(raw_dir: Path, out_dir: Path, config: SplitConfig) -> dict:
    """Read ``raw_dir`` (PixelRec layout), write the split Parquet files and report to ``out_dir``.

    Returns ``{"summary", "counts", "examples"}`` (the report), plus ``"lines"``: the report's counts
    as console lines.
    """
    raw_dir = Path(raw_dir)
    report = RawReport()
    users, items, inter = _index(*_interactions_with_items(raw_dir, report))
    inter = _assign_roles(inter, config, report)
    _require_test_users(inter, raw_dir, config)
    parts = {r: inter.filter(pl.col("_role") == r).select(schema.USER_IDX, schema.ITEM_IDX, schema.TIMESTAMP)
             for r in ROLES}
    items, cut, n_tags = _item_table(items, inter, parts["train"], raw_dir, config, report)
    users = _user_table(users, parts)
    result = {"summary": _summary(users, items, parts, cut, n_tags), **report.as_dict()}

    with atomic_dir(out_dir) as tmp:
        for role, name in zip(ROLES, (schema.TRAIN_FILE, schema.VALID_FILE, schema.TEST_FILE), strict=True):
            parts[role].write_parquet(tmp / name, statistics=False)
        users.write_parquet(tmp / schema.USERS_FILE, statistics=False)
        items.write_parquet(tmp / schema.ITEMS_FILE, statistics=False)
        (tmp / schema.SPLIT_REPORT).write_text(json.dumps(result, indent=2, default=str) + "\n")
    return {**result, "lines": report.lines()}


__all__ = ["RawDataError", "SplitConfig", "split_raw"]
