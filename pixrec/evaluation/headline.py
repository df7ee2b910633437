"""Results at a glance: each model's NDCG@10 on the full, cold and sampled protocols with its bootstrap
interval, the headline model first — a dozen columns per model where metrics/evaluate.json has
hundreds, so ``dvc exp show`` and ``dvc metrics diff`` can lead with it (README "Results at a glance")."""

from __future__ import annotations

import json
from pathlib import Path

from pixrec.atomic import atomic_file
from pixrec.errors import InputError
from pixrec.evaluation.output import INTERVALS_KEY

METRIC = "ndcg@10"
PROTOCOLS = ("full", "cold", "sampled")  # the honest protocol first; sampled is the poster's


def headline_metrics(evaluate: dict, headline: str, source: Path) -> dict:
    """``{"ndcg@10": {model: {full, full_lo, full_hi, cold, ..., sampled_hi}}}`` from the evaluate
    stage's metrics ``evaluate`` (read from ``source``); ``headline`` first, then file order. A
    protocol a model was not run on (no sampled candidates) is left out, not zero."""
    models = [m for m in evaluate if m != INTERVALS_KEY]
    if headline not in models:
        raise InputError(f"{source}: no {headline!r} (models.headline) among the evaluated models {models}; "
                         "train it and run dvc repro evaluate")
    table = {}
    for model in [headline, *(m for m in models if m != headline)]:
        table[model] = {f"{protocol}{end}": evaluate[model][protocol][METRIC + end]
                        for protocol in PROTOCOLS if METRIC in evaluate[model].get(protocol, {})
                        for end in ("", "_lo", "_hi") if METRIC + end in evaluate[model][protocol]}
    return {METRIC: table}


def write_headline(path: Path, table: dict) -> None:
    """Written in the table's order (not sorted): ``dvc exp show`` shows columns in file order."""
    with atomic_file(Path(path)) as tmp:
        tmp.write_text(json.dumps(table, indent=2) + "\n", encoding="utf-8")
