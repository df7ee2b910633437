"""The evaluate stage's files: metrics JSON, the dvc plot CSV, per-user ranks and top-10 lists."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from pixrec import schema
from pixrec.atomic import atomic_dir, atomic_file, write_json
from pixrec.evaluation.evaluator import ModelResult
from pixrec.evaluation.intervals import INTERVALS_KEY, PAIRED_METRIC, IntervalConfig
from pixrec.evaluation.metrics import LIST_K


def metrics_json(results: list[ModelResult], reference: str | None, intervals: IntervalConfig) -> dict:
    """``{model: {protocol: {metric@k, metric@k_lo, metric@k_hi, ..., n_users}}, 'intervals': {...}}``:
    flat numbers, so ``dvc metrics diff`` shows every value and bound."""
    names = [r.name for r in results]
    if len(set(names)) != len(names) or INTERVALS_KEY in names:
        raise ValueError(f"evaluated models need distinct names other than {INTERVALS_KEY!r}: {names}")
    paired = f"{PAIRED_METRIC[0]}@{PAIRED_METRIC[1]}"
    about = {"level": intervals.level, "resamples": intervals.resamples, "reference": reference,
             "paired_metric": paired, "paired_test": "wilcoxon signed-rank, two-sided"}
    return {**{r.name: r.metrics for r in results}, INTERVALS_KEY: about}


def _ranks_frame(results: list[ModelResult]) -> pl.DataFrame:
    return pl.concat([
        pl.DataFrame({
            schema.USER_IDX: np.asarray(u, dtype=np.int32),
            schema.ITEM_IDX: np.asarray(t, dtype=np.int32),
            schema.EVAL_MODEL: r.name,
            schema.EVAL_PROTOCOL: protocol,
            schema.EVAL_RANK: np.asarray(rk, dtype=np.int64),
        })
        for r in results
        for protocol, (u, t, rk) in r.per_user.items()
    ], how="vertical")


def _top_frame(results: list[ModelResult]) -> pl.DataFrame:
    return pl.concat([
        pl.DataFrame({
            schema.EVAL_MODEL: r.name,
            schema.USER_IDX: np.asarray(r.per_user["full"][0], dtype=np.int32),
            schema.EVAL_TOP_ITEMS: r.top_items,
        })
        for r in results
    ], how="vertical")


def _plot_frame(results: list[ModelResult], headline: str | None) -> pl.DataFrame:
    """A row per (model, protocol): NDCG@10 and its interval bounds exactly as in evaluate.json, and
    ``headline`` so the plot (.dvc/plots/metric_intervals.json) can mark the model the project leads with."""
    return pl.DataFrame(
        [
            {"model": r.name, "protocol": p, "metric": "ndcg@10", "value": m["ndcg@10"],
             "lo": m.get("ndcg@10_lo"), "hi": m.get("ndcg@10_hi"), "label": f"{p} · {r.name}",
             "headline": r.name == headline}
            for r in results
            for p, m in r.metrics.items()
            if "ndcg@10" in m
        ],
        schema={"model": pl.Utf8, "protocol": pl.Utf8, "metric": pl.Utf8, "value": pl.Float64,
                "lo": pl.Float64, "hi": pl.Float64, "label": pl.Utf8, "headline": pl.Boolean},
    )


def write_outputs(
    results: list[ModelResult], reference: str | None, intervals: IntervalConfig, out_dir: Path,
    metrics_path: Path, plot_path: Path, meta: dict, *, headline: str | None,
) -> dict:
    """``metrics/evaluate.json`` (:func:`metrics_json`), the dvc plot CSV (NDCG@10 per model and
    protocol, with its interval; ``headline``, ``models.headline``, flags that model's rows), and
    ``out_dir``: per-user ranks and top-10 lists (Parquet)."""
    metrics = metrics_json(results, reference, intervals)
    with atomic_dir(Path(out_dir)) as tmp:
        (_ranks_frame(results) if results else pl.DataFrame()).write_parquet(
            tmp / schema.EVAL_RANKS_FILE, statistics=False)
        (_top_frame(results) if results else pl.DataFrame()).write_parquet(
            tmp / schema.EVAL_TOP_FILE, statistics=False)
        # no timings (they are logged): the stage's outputs must hash the same on every run
        write_json(tmp / schema.EVAL_META_FILE, {**meta, "list_k": LIST_K})
    with atomic_file(Path(plot_path)) as tmp:
        _plot_frame(results, headline).write_csv(tmp)
    write_json(Path(metrics_path), metrics)
    return metrics
