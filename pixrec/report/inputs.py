"""Reading what the other stages wrote, with errors that name the file and the stage to run."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import polars as pl

from pixrec import schema as S
from pixrec.errors import InputError

EVALUATE_JSON = "evaluate.json"
ABLATION_JSON = "ablation.json"
TRAIN_JSON = "train/fusion.json"  # the six-token model's training summary
TWO_STAGE_JSON = "two_stage.json"
DOWNLOAD_JSON = "download.json"
PER_USER_COLUMNS = (S.USER_IDX, "model", "protocol", "rank")


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


def read_per_user(eval_dir: Path) -> pl.DataFrame | None:
    """Per-user ranks from the evaluate stage's ``ranks.parquet`` (None when there is none)."""
    path = Path(eval_dir) / S.EVAL_RANKS_FILE
    if not path.is_file():
        return None
    missing = [c for c in PER_USER_COLUMNS if c not in pl.read_parquet_schema(path)]
    if missing:
        raise InputError(f"{path}: no column(s) {missing}; re-run the evaluate stage")
    return pl.read_parquet(path, columns=list(PER_USER_COLUMNS)).with_columns(
        pl.col(S.USER_IDX).cast(pl.Int64), pl.col("model").cast(pl.Utf8),
        pl.col("protocol").cast(pl.Utf8), pl.col("rank").cast(pl.Float64),
    )


def training_history(model_dir: Path) -> list[dict]:
    """``history`` rows of ``models/fusion/meta.json`` (epoch, loss, val_ndcg@10, ...), or []."""
    meta = read_json(Path(model_dir) / "meta.json", "train", required=False) or {}
    history = meta.get("history")
    return [row for row in history if isinstance(row, Mapping)] if isinstance(history, list) else []


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
    synthetic = source == "synthetic" or (source is None and (raw_dir / S.RAW_TRUTH).exists())
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
