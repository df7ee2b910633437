"""Reading what the other stages wrote, with errors that name the file and the stage to run.

The report loads no model and scores nothing: ranks and top-10 lists are the evaluate stage's
(``data/eval``), training curves are the train stages' dvclive logs, every number is a metrics file's.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from pixrec import schema
from pixrec.errors import InputError

EVALUATE_JSON = "evaluate.json"
TUNING_JSON = "tuning.json"
ABLATION_JSON = "ablation.json"
TWO_STAGE_JSON = "two_stage.json"
TRAIN_DIR = "train"  # metrics/train/<model>.json, one per fitted model
DOWNLOAD_JSON = "download.json"
# dvclive's files under dvclive/<model>/ (train stage: live.log_metric("train/loss"), "valid/ndcg@10")
LIVE_LOSS = Path("plots/metrics/train/loss.tsv")
LIVE_NDCG = Path("plots/metrics/valid/ndcg@10.tsv")
RANK_COLUMNS = (schema.USER_IDX, schema.ITEM_IDX, schema.EVAL_MODEL, schema.EVAL_PROTOCOL, schema.EVAL_RANK)
TOP_COLUMNS = (schema.EVAL_MODEL, schema.USER_IDX, schema.EVAL_TOP_ITEMS)


def read_json(path: Path, stage: str, required: bool = True) -> dict | None:
    """A JSON object from ``path``; a missing optional file is None, a missing required one an error."""
    path = Path(path)
    if not path.is_file():
        if required:
            raise InputError(f"{path}: missing; run the {stage} stage first")
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON (line {exc.lineno}): {exc.msg}") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a JSON object at the top level, found {type(data).__name__}")
    return data


def _read_parquet(path: Path, columns: tuple[str, ...]) -> pl.DataFrame | None:
    if not path.is_file():
        return None
    missing = [c for c in columns if c not in pl.read_parquet_schema(path)]
    if missing:
        raise InputError(f"{path}: no column(s) {missing}; re-run the evaluate stage")
    return pl.read_parquet(path, columns=list(columns))


@dataclass
class ModelRanks:
    """One model's full-protocol results from ``data/eval``, row-aligned: test user, its held-out
    item, the evaluator's rank of it and the evaluator's top-10 list (-1 = empty slot)."""

    model: str
    users: np.ndarray  # (U,) int64, ascending
    targets: np.ndarray  # (U,) int64
    ranks: np.ndarray  # (U,) int64, 1-based, ties counted against the target (the evaluator's rule)
    top: np.ndarray  # (U, L) int64


def read_model_ranks(eval_dir: Path, model: str, n_users: int, n_items: int) -> ModelRanks | None:
    """``model``'s full-protocol ranks and top lists, or None when ``data/eval`` has none for it.

    Indices outside the split (an evaluation of another split) are an error naming the file.
    """
    ranks_path, top_path = Path(eval_dir) / schema.EVAL_RANKS_FILE, Path(eval_dir) / schema.EVAL_TOP_FILE
    ranks, top = _read_parquet(ranks_path, RANK_COLUMNS), _read_parquet(top_path, TOP_COLUMNS)
    if ranks is None or top is None:
        return None
    ranks = ranks.filter((pl.col(schema.EVAL_MODEL) == model) & (pl.col(schema.EVAL_PROTOCOL) == "full"))
    top = top.filter(pl.col(schema.EVAL_MODEL) == model)
    if not ranks.height and not top.height:
        return None
    if not ranks.height or not top.height:  # one file of an evaluation, the other of another
        has, lacks = (top_path, ranks_path) if top.height else (ranks_path, top_path)
        raise InputError(f"{lacks}: no full-ranking rows of {model}, which {has} has; "
                         "re-run the evaluate stage")
    joined = ranks.sort(schema.USER_IDX).join(top.drop(schema.EVAL_MODEL), on=schema.USER_IDX, how="left")
    if joined[schema.EVAL_TOP_ITEMS].null_count():
        raise InputError(f"{top_path}: {model} has no top list for some users of {ranks_path}; "
                         "re-run the evaluate stage")
    users = joined[schema.USER_IDX].to_numpy().astype(np.int64)
    targets = joined[schema.ITEM_IDX].to_numpy().astype(np.int64)
    lists = np.asarray(joined[schema.EVAL_TOP_ITEMS].to_list(), dtype=np.int64).reshape(len(users), -1)
    for path, what, values, low, limit in ((ranks_path, schema.USER_IDX, users, 0, n_users),
                                           (ranks_path, schema.ITEM_IDX, targets, 0, n_items),
                                           (top_path, schema.EVAL_TOP_ITEMS, lists, -1, n_items)):
        bad = values[(values < low) | (values >= limit)]
        if len(bad):
            raise InputError(f"{path}: {model}'s {what} {int(bad[0])} is outside the split's "
                             f"0..{limit - 1}; re-run the evaluate stage on this split")
    return ModelRanks(model, users, targets, joined[schema.EVAL_RANK].to_numpy().astype(np.int64), lists)


def training_curve(live_dir: Path) -> list[dict[str, float]]:
    """``[{epoch, loss, val_ndcg@10}]`` from a dvclive directory (step = epoch), or [] without one."""
    rows: dict[int, dict[str, float]] = {}
    for rel, key in ((LIVE_LOSS, "loss"), (LIVE_NDCG, "val_ndcg@10")):
        path = Path(live_dir) / rel
        if not path.is_file():
            continue
        frame = pl.read_csv(path, separator="\t")
        column = rel.stem  # dvclive names the value column after the metric
        if "step" not in frame.columns or column not in frame.columns:
            raise InputError(f"{path}: expected columns step and {column}; re-run the train stage")
        for step, value in zip(frame["step"].to_list(), frame[column].to_list(), strict=True):
            rows.setdefault(int(step), {"epoch": int(step)})[key] = float(value)
    return [rows[s] for s in sorted(rows)]


def _find(data: Any, key: str) -> Any:
    """First value of ``key`` anywhere in nested dicts (download.json's layout is the download stage's)."""
    if isinstance(data, Mapping):
        if key in data:
            return data[key]
        for value in data.values():
            found = _find(value, key)
            if found is not None:
                return found
    return None


def dataset_label(raw_dir: Path) -> tuple[str, bool]:
    """A plain description of the data the results come from, and whether it is the synthetic one.

    Read from ``data/raw/download.json`` (``label``, or ``source`` / ``preset`` / ``seed``); the
    presence of the synthetic generator's latent truth decides when that file says nothing.
    """
    raw_dir = Path(raw_dir)
    info = read_json(raw_dir / DOWNLOAD_JSON, "download", required=False) or {}
    label, source = _find(info, "label"), _find(info, "source")
    synthetic = source == "synthetic" or (source is None and (raw_dir / schema.RAW_TRUTH).exists())
    if isinstance(label, str) and label:
        return label, synthetic
    if synthetic:
        details = [f"{k} {v}" for k in ("preset", "seed") if (v := _find(info, k)) is not None]
        suffix = f" ({', '.join(details)})" if details else ""
        return f"built-in synthetic PixelRec-like dataset{suffix}", True
    if source == "local":
        where = _find(info, "local_dir") or _find(info, "path")
        return "user-supplied PixelRec copy" + (f" ({where})" if where else ""), False
    if source == "url":
        return "PixelRec-layout data downloaded from URLs", False
    return "user-supplied PixelRec-layout data", False
