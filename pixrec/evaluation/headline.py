"""Results at a glance: each model's NDCG@10 on the full, cold and sampled protocols with its bootstrap
interval, the headline model first — a dozen columns per model where metrics/evaluate.json has
hundreds, so ``dvc exp show`` and ``dvc metrics diff`` can lead with it (docs/evaluation.md, "Comparing
runs: headline.json"). The metrics shown are those with ``headline_ks`` in
:data:`pixrec.evaluation.metrics.METRICS` (NDCG@10)."""

from __future__ import annotations

import json
from pathlib import Path

from pixrec.atomic import atomic_file
from pixrec.errors import InputError
from pixrec.evaluation.intervals import INTERVALS_KEY
from pixrec.evaluation.metrics import METRICS

PROTOCOLS = ("full", "cold", "sampled")  # the honest protocol first; sampled is the poster's


def headline_metrics(evaluate: dict, headline: str, source: Path) -> dict:
    """``{"ndcg@10": {model: {full, full_lo, full_hi, cold, ..., sampled_hi}}}`` from the evaluate
    stage's metrics ``evaluate`` (read from ``source``), one entry per key of :func:`headline_keys`;
    ``headline`` first, then file order. A protocol a model was not run on (no sampled candidates) is
    left out, not zero."""
    models = [m for m in evaluate if m != INTERVALS_KEY]
    if headline not in models:
        raise InputError(f"{source}: no {headline!r} (models.headline) among the evaluated models {models}; "
                         "train it and run dvc repro evaluate")
    order = [headline, *(m for m in models if m != headline)]
    return {metric: {model: _row(evaluate[model], metric) for model in order} for metric in headline_keys()}


def headline_keys() -> list[str]:
    """The metrics of the headline table: each registered metric at each of its ``headline_ks`` (ndcg@10)."""
    return [f"{m.name}@{k}" for m in METRICS.entries() for k in m.headline_ks]


def _row(blocks: dict, metric: str) -> dict:
    """One model's ``metric`` with its bounds on each protocol it was run on: full, full_lo, full_hi, ..."""
    return {f"{protocol}{end}": blocks[protocol][metric + end]
            for protocol in PROTOCOLS if metric in blocks.get(protocol, {})
            for end in ("", "_lo", "_hi") if metric + end in blocks[protocol]}


def write_headline(path: Path, table: dict) -> None:
    """Written in the table's order (not sorted): ``dvc exp show`` shows columns in file order."""
    with atomic_file(Path(path)) as tmp:
        tmp.write_text(json.dumps(table, indent=2) + "\n", encoding="utf-8")
