"""Metric tables and the sentences that read them, independent of HTML or Markdown.

A :class:`Table` holds raw floats; formatting (4 decimals) and "best per column" happen here once,
so the HTML page, the Markdown file and the README show the same strings.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

MISSING = "–"

# Display order and names; models / variants not listed keep their file order after these.
MODEL_NAMES: dict[str, str] = {
    "random": "Random",
    "most_popular": "MostPopular",
    "item_knn": "Item-kNN",
    "user_knn": "User-kNN",
    "ease": "EASE",
    "content_knn": "Content-kNN",
    "als": "ALS",
    "bpr": "BPR",
    "hybrid": "Hybrid (CF + content)",
    "sasrec": "SASRec",
    "fusion": "Fusion (ours)",
}
VARIANT_TEXT: dict[str, str] = {
    "no_image": "Removing the image token",
    "no_text": "Removing the text token",
    "no_counts": "Removing the counts token (lifetime totals, a leak of future popularity)",
    "ids_only": "Keeping only the ID and tag tokens (no counts, text or image)",
    "content_only": "Removing the item-ID token (every item scored from its content)",
}

SAMPLED_COLUMNS: list[tuple[str, str]] = [
    ("recall@5", "R@5"), ("ndcg@5", "N@5"), ("recall@10", "R@10"), ("ndcg@10", "N@10"),
    ("mrr@10", "MRR"), ("novelty_p", "Novelty_P"),
]
FULL_COLUMNS: list[tuple[str, str]] = [
    *[(f"{m}@{k}", f"{short}@{k}") for k in (10, 20, 50)
      for m, short in (("recall", "R"), ("ndcg", "N"), ("mrr", "MRR"))],
    ("coverage@10", "Cov@10"), ("novelty@10", "Nov@10"),
]
NOT_BOLDED = {"novelty_p"}  # = 1 − R@10/10 under the sampled protocol: "best" would reward misses
ABLATION_PROTOCOLS = ("sampled", "full", "cold")
ABLATION_METRICS: list[tuple[str, str]] = [("recall@10", "R@10"), ("ndcg@10", "N@10")]
METRIC_WORDS = {"recall": "Recall", "ndcg": "NDCG", "mrr": "MRR"}


def fmt(value: float | None) -> str:
    """The one number format of the report: 4 decimals (counts of 100 and more: whole, with
    separators), an en dash when absent."""
    if value is None or not math.isfinite(value):
        return MISSING
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.4f}"


def fmt_delta(value: float) -> str:
    """Signed difference with a real minus sign, e.g. ``−0.0120``."""
    return f"{value:+.4f}".replace("-", "−")


def number(value: object) -> float | None:
    """A metric value as float, or None for anything that is not a finite number."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def metric_label(key: str) -> str:
    """``ndcg@10`` -> ``NDCG@10`` for prose."""
    name, _, k = key.partition("@")
    return f"{METRIC_WORDS.get(name, name)}@{k}" if k else METRIC_WORDS.get(name, name)


@dataclass
class Table:
    """Rows × columns of floats. ``key`` names the table in the page (``id``) and in tests."""

    key: str
    title: str
    columns: list[tuple[str, str]]  # (metric key, header)
    rows: list[tuple[str, str, list[float | None]]]  # (row key, row label, values)
    notes: list[str] = field(default_factory=list)
    no_bold: set[str] = field(default_factory=set)

    def cells(self) -> list[list[tuple[str, bool]]]:
        """Formatted cells with a bold flag: the maximum of each column (ties all bold)."""
        best: list[str | None] = []
        for j, (metric, _) in enumerate(self.columns):
            vals = [r[2][j] for r in self.rows if r[2][j] is not None]
            best.append(fmt(max(vals)) if vals and metric not in self.no_bold else None)
        return [[(fmt(v), best[j] is not None and fmt(v) == best[j]) for j, v in enumerate(values)]
                for _, _, values in self.rows]


def ordered(keys: list[str], preferred: list[str]) -> list[str]:
    """``preferred`` first (those present), then the rest in their given order."""
    return [k for k in preferred if k in keys] + [k for k in keys if k not in preferred]


def _user_counts(metrics: Mapping[str, Mapping], protocol: str) -> str:
    """The "N test users" of a caption, from each model's ``n_users`` or a top-level
    ``{"n_users": {protocol: N}}``; a range when models differ."""
    values = [m[protocol].get("n_users") for m in metrics.values()
              if isinstance(m, Mapping) and isinstance(m.get(protocol), Mapping)]
    if isinstance(metrics.get("n_users"), Mapping):
        values.append(metrics["n_users"].get(protocol))
    counts = sorted({int(n) for v in values if (n := number(v)) is not None})
    if not counts:
        return ""
    return f"{counts[0]:,} test users" if len(counts) == 1 else f"{counts[0]:,}–{counts[-1]:,} test users"


def protocol_table(
    metrics: Mapping[str, Mapping], protocol: str, columns: list[tuple[str, str]], title: str,
    notes: list[str] | None = None,
) -> Table | None:
    """Models × ``columns`` for one protocol; columns no model reports are left out."""
    models = [m for m in ordered(list(metrics), list(MODEL_NAMES))
              if isinstance(metrics[m], Mapping) and isinstance(metrics[m].get(protocol), Mapping)]
    if not models:
        return None
    present = [(k, h) for k, h in columns
               if any(number(metrics[m][protocol].get(k)) is not None for m in models)]
    rows = [(m, MODEL_NAMES.get(m, m), [number(metrics[m][protocol].get(k)) for k, _ in present])
            for m in models]
    users = _user_counts(metrics, protocol)
    return Table(protocol, f"{title}{f' ({users})' if users else ''}", present, rows,
                 list(notes or []), set(NOT_BOLDED))


SAMPLED_NOTES = [
    "Sampled protocol (the poster's): each test positive ranked against 20 random items the user never "
    "interacted with. MRR is MRR@10.",
    "Novelty_P is reported for comparability with the poster only: under this protocol it equals "
    "1 − R@10/10, so it measures misses, not novelty (not bolded).",
    "Sampled metrics are known to disagree with full ranking, even in the order of models "
    "(Krichene & Rendle, KDD 2020): read the full-ranking table for conclusions.",
]
FULL_NOTES = [
    "Full ranking: the test item ranked against the whole catalogue, the user's training and validation "
    "items masked. Coverage@10 is the share of the catalogue in any top-10 list; Nov@10 the mean "
    "self-information of the top-10 items under training popularity.",
]
COLD_NOTES = [
    "Cold: full ranking restricted to test items with no training interaction. ID-only methods cannot "
    "rank these items; content has to.",
]


def model_tables(metrics: Mapping[str, Mapping]) -> list[Table]:
    """The sampled, full and cold tables of ``metrics/evaluate.json`` (those present)."""
    specs = [
        ("sampled", SAMPLED_COLUMNS, "Sampled protocol, 1 positive + 20 negatives", SAMPLED_NOTES),
        ("full", FULL_COLUMNS, "Full ranking", FULL_NOTES),
        ("cold", FULL_COLUMNS, "Cold-start test items, full ranking", COLD_NOTES),
    ]
    tables = [protocol_table(metrics, p, cols, title, notes) for p, cols, title, notes in specs]
    return [t for t in tables if t is not None]


def ablation_table(ablation: Mapping[str, Mapping], variants_order: list[str] | None = None) -> Table | None:
    """Variants × (protocol, metric) for the key metrics, best per column bold."""
    preferred = ["full", *(variants_order or VARIANT_TEXT)]
    variants = [v for v in ordered(list(ablation), preferred) if isinstance(ablation[v], Mapping)]
    if not variants:
        return None
    columns = [(f"{p}/{k}", f"{p} {h}") for p in ABLATION_PROTOCOLS for k, h in ABLATION_METRICS]

    def value(v: str, col: str) -> float | None:
        protocol, metric = col.split("/", 1)
        block = ablation[v].get(protocol)
        return number(block.get(metric)) if isinstance(block, Mapping) else None

    columns = [c for c in columns if any(value(v, c[0]) is not None for v in variants)]
    rows = [(v, v, [value(v, c) for c, _ in columns]) for v in variants]
    notes = ablation_sentences(ablation)
    return Table("ablation", "Ablation: one token removed at a time", columns, rows, notes)


def ablation_sentences(ablation: Mapping[str, Mapping], base: str = "full") -> list[str]:
    """One sentence per variant: how its key metrics differ from the ``full`` variant."""
    if base not in ablation:
        return [f"No '{base}' variant in the ablation results: differences are not computed."]
    keys = [("full", "ndcg@10"), ("cold", "ndcg@10"), ("sampled", "ndcg@10")]
    out = []
    for variant in ordered(list(ablation), list(VARIANT_TEXT)):
        if variant == base or not isinstance(ablation[variant], Mapping):
            continue
        if ablation[variant].get("nothing_removed"):
            out.append(f"{VARIANT_TEXT.get(variant, f'Variant {variant!r}')} ({variant}): nothing to "
                       f"remove, its row is the full model's ({ablation[variant]['nothing_removed']}).")
            continue
        parts = []
        for protocol, metric in keys:
            a = _get(ablation[base], protocol, metric)
            b = _get(ablation[variant], protocol, metric)
            if a is not None and b is not None:
                parts.append(f"{protocol} {metric_label(metric)} by {fmt_delta(b - a)} "
                             f"({fmt(a)} → {fmt(b)})")
        what = VARIANT_TEXT.get(variant, f"Variant '{variant}'")
        if parts:
            body = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
            out.append(f"{what} ({variant}) changes {body}.")
        else:
            out.append(f"{what} ({variant}): no metric shared with '{base}' to compare.")
    return out


def _get(block: Mapping, protocol: str, metric: str) -> float | None:
    part = block.get(protocol)
    return number(part.get(metric)) if isinstance(part, Mapping) else None


TWO_STAGE_COLUMNS = [("full/ndcg@10", "full NDCG@10"), ("full/recall@50", "full Recall@50"),
                     ("cold/ndcg@10", "cold NDCG@10"), ("full/candidate_recall", "test item proposed"),
                     ("full/mean_candidates", "candidates / user")]


def two_stage_table(sweep: Mapping[str, Mapping]) -> Table | None:
    """Exact vs two-stage ranking of the fusion model (metrics/two_stage.json), one row per N."""
    keys = ["exact", *sorted((k for k in sweep if k.startswith("n=")), key=lambda k: int(k[2:]))]
    if "exact" not in sweep:
        return None
    rows = [(k, "exact (every item scored)" if k == "exact" else f"two-stage, N = {k[2:]} per retriever",
             [_get(sweep[k], *c.split("/", 1)) for c, _ in TWO_STAGE_COLUMNS]) for k in keys]
    retrievers = ", ".join(sweep.get("retrievers", [])) or "the configured retrievers"
    notes = [f"Two-stage: the union of each retriever's ({retrievers}) top-N unseen items is re-scored by "
             "the fusion model; every other item ranks last. 'test item proposed' is the share of test "
             "items in that union: the ceiling on two-stage recall."]
    return Table("two_stage", "Fusion model: exact vs two-stage full ranking", TWO_STAGE_COLUMNS, rows,
                 notes, no_bold={"full/mean_candidates"})
