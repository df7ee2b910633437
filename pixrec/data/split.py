"""Per-user temporal leave-last-out split with integer-indexed user and item tables.

Per user, interactions are ordered by (timestamp, item_id): the last is test, the second-to-last
validation, the rest train; users with fewer than ``min_user_interactions`` only train. An item is
*cold* when it has no training interaction; *late* when first seen after the global cut time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from pixrec import schema as S
from pixrec.data.raw import RawDataError, RawReport, list_covers, read_interactions, read_items
from pixrec.io import atomic_dir


@dataclass(frozen=True)
class SplitConfig:
    min_user_interactions: int = 3
    cold_cut_quantile: float = 0.9

    def __post_init__(self) -> None:
        if self.min_user_interactions < 3:
            raise ValueError("split.min_user_interactions must be >= 3 (train, valid and test)")
        if not 0.0 < self.cold_cut_quantile <= 1.0:
            raise ValueError("split.cold_cut_quantile must be in (0, 1]")


def _interactions_with_items(raw_dir: Path, report: RawReport) -> tuple[pl.DataFrame, pl.DataFrame]:
    inter = read_interactions(raw_dir, report)
    items = read_items(raw_dir, report)
    unknown = ~pl.col(S.ITEM_ID).is_in(items[S.ITEM_ID].implode())
    n_unknown = inter.select(unknown.sum()).item()
    if n_unknown:
        report.add("interactions: item_id not in item_info.csv (dropped)", n_unknown,
                   inter.filter(unknown).head(10).select("_row", S.ITEM_ID).to_dicts())
        inter = inter.filter(~unknown)
    # exact duplicate (user, item) pairs: keep the earliest, count the rest
    inter = inter.sort([S.USER_ID, S.ITEM_ID, S.TIMESTAMP, "_row"])
    dup = pl.struct(S.USER_ID, S.ITEM_ID).is_first_distinct().not_()
    n_dup = inter.select(dup.sum()).item()
    report.add("interactions: repeated (user, item) pair collapsed to the earliest", n_dup,
               inter.filter(dup).head(10).select("_row", S.USER_ID, S.ITEM_ID).to_dicts())
    inter = inter.filter(~dup)
    if inter.height == 0:
        raise RawDataError(f"{raw_dir}: no interaction left after validation")
    return inter, items


def split_raw(raw_dir: Path, out_dir: Path, config: SplitConfig) -> dict:
    """Read ``raw_dir`` (PixelRec layout), write the split Parquet files and report to ``out_dir``."""
    raw_dir = Path(raw_dir)
    report = RawReport()
    inter, items = _interactions_with_items(raw_dir, report)

    # --- integer ids: sorted strings, so the same data gives the same indices ----------------
    users = inter.select(S.USER_ID).unique().sort(S.USER_ID).with_row_index(S.USER_IDX)
    items = items.sort(S.ITEM_ID).with_row_index(S.ITEM_IDX)
    users = users.with_columns(pl.col(S.USER_IDX).cast(pl.Int32))
    items = items.with_columns(pl.col(S.ITEM_IDX).cast(pl.Int32))
    inter = (
        inter.join(users, on=S.USER_ID, how="left")
        .join(items.select(S.ITEM_ID, S.ITEM_IDX), on=S.ITEM_ID, how="left")
        .select(S.USER_IDX, S.ITEM_IDX, S.TIMESTAMP)
    )

    # --- leave-last-out by time ------------------------------------------------------------
    inter = inter.sort([S.USER_IDX, S.TIMESTAMP, S.ITEM_IDX])
    inter = inter.with_columns(
        pl.len().over(S.USER_IDX).alias("_n"),
        (pl.int_range(pl.len()).over(S.USER_IDX)).alias("_pos"),
    )
    eligible = pl.col("_n") >= config.min_user_interactions
    role = (
        pl.when(eligible & (pl.col("_pos") == pl.col("_n") - 1)).then(pl.lit("test"))
        .when(eligible & (pl.col("_pos") == pl.col("_n") - 2)).then(pl.lit("valid"))
        .otherwise(pl.lit("train"))
    )
    inter = inter.with_columns(role.alias("_role"))
    n_short = inter.filter(~eligible).select(S.USER_IDX).n_unique()
    report.add(f"users with < {config.min_user_interactions} interactions (train only)", n_short)
    parts = {r: inter.filter(pl.col("_role") == r).select(S.USER_IDX, S.ITEM_IDX, S.TIMESTAMP)
             for r in ("train", "valid", "test")}

    # --- item table: training counts, first sighting, cold / late ---------------------------
    cut = inter.select(pl.col(S.TIMESTAMP).quantile(config.cold_cut_quantile, "nearest")).item()
    n_train_items = parts["train"].group_by(S.ITEM_IDX).agg(pl.len().cast(pl.Int32).alias(S.N_TRAIN))
    first_seen = inter.group_by(S.ITEM_IDX).agg(pl.col(S.TIMESTAMP).min().alias(S.FIRST_SEEN))
    covers = list_covers(raw_dir)
    tags = (items.select(pl.col(S.TAG).drop_nulls().unique().sort()).to_series().to_list())
    tag_index = pl.DataFrame({S.TAG: tags, S.TAG_IDX: list(range(1, len(tags) + 1))},
                             schema={S.TAG: pl.Utf8, S.TAG_IDX: pl.Int32})
    items = (
        items.join(n_train_items, on=S.ITEM_IDX, how="left")
        .join(first_seen, on=S.ITEM_IDX, how="left")
        .join(tag_index, on=S.TAG, how="left")
        .with_columns(
            pl.col(S.N_TRAIN).fill_null(0),
            pl.col(S.TAG_IDX).fill_null(0),
            pl.when(pl.col(S.ITEM_ID).is_in(list(covers)))
            .then(pl.lit(S.RAW_COVERS + "/") + pl.col(S.ITEM_ID) + pl.lit(".jpg"))
            .otherwise(None)
            .alias(S.COVER_PATH),
        )
        .with_columns(
            (pl.col(S.N_TRAIN) == 0).alias(S.IS_COLD),
            (pl.col(S.FIRST_SEEN) > cut).fill_null(False).alias("is_late"),
        )
        .sort(S.ITEM_IDX)
        .select(S.ITEM_IDX, S.ITEM_ID, S.TAG, S.TAG_IDX, *S.COUNT_COLUMNS, S.TITLE,
                S.DESCRIPTION, S.COVER_PATH, S.N_TRAIN, S.FIRST_SEEN, S.IS_COLD, "is_late")
    )
    report.add("items: no cover file (masked by embed-images)", items[S.COVER_PATH].null_count())
    report.add("items: no interaction at all (kept in the catalogue)",
               items[S.FIRST_SEEN].null_count())

    user_train = parts["train"].group_by(S.USER_IDX).agg(pl.len().cast(pl.Int32).alias(S.N_TRAIN))
    users = (
        users.join(user_train, on=S.USER_IDX, how="left")
        .with_columns(
            pl.col(S.N_TRAIN).fill_null(0),
            pl.col(S.USER_IDX).is_in(parts["test"][S.USER_IDX].implode()).alias(S.IS_TEST_USER),
        )
        .sort(S.USER_IDX)
    )

    test_cold = parts["test"].join(items.select(S.ITEM_IDX, S.IS_COLD, "is_late"), on=S.ITEM_IDX)
    summary = {
        "n_users": users.height,
        "n_items": items.height,
        "n_tags": len(tags),
        "n_interactions": inter.height,
        "n_train": parts["train"].height,
        "n_valid": parts["valid"].height,
        "n_test": parts["test"].height,
        "n_cold_items": int(items[S.IS_COLD].sum()),
        "n_late_items": int(items["is_late"].sum()),
        "n_cold_test": int(test_cold[S.IS_COLD].sum()),
        "n_cold_test_late": int((test_cold[S.IS_COLD] & test_cold["is_late"]).sum()),
        "cold_cut_timestamp": int(cut),
    }
    result = {"summary": summary, **report.as_dict()}

    with atomic_dir(out_dir) as tmp:
        for role, name in (("train", S.TRAIN_FILE), ("valid", S.VALID_FILE), ("test", S.TEST_FILE)):
            parts[role].write_parquet(tmp / name, statistics=False)
        users.write_parquet(tmp / S.USERS_FILE, statistics=False)
        items.write_parquet(tmp / S.ITEMS_FILE, statistics=False)
        (tmp / S.SPLIT_REPORT).write_text(json.dumps(result, indent=2, default=str) + "\n")
    return result


__all__ = ["RawDataError", "SplitConfig", "split_raw"]
