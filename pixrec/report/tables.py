"""Metric tables, independent of HTML or Markdown.

A :class:`Table` holds raw floats (a point estimate and its interval, when the file has one);
formatting (4 decimals) and "best per column" happen here once, so the HTML page, the Markdown file
and the results page (docs/results.md) show the same strings.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from pixrec.evaluation.intervals import INTERVALS_KEY
from pixrec.evaluation.metrics import LIST_K, METRICS, list_metrics, rank_metrics
from pixrec.evaluation.protocols import SAMPLED_KS

MISSING = "–"

# Display order and names; models not listed keep their file order after these (and after the
# fitted ones, which come in ``models.fit`` order).
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
    "fusion": "Fusion (six-token pair model, the poster's)",
    "two_tower": "Two-tower (multimodal item tower, sequential user tower)",
}
HEADLINE = " (headline)"

FULL_KS = (10, 20, 50)  # the full and cold tables' cut-offs (those of eval.ks the file has)


def columns(protocol: str) -> list[tuple[str, str]]:
    """(metric key, header) of ``protocol``'s table, from :data:`~pixrec.evaluation.metrics.METRICS`.

    The sampled table is laid out as the poster's: every cut-off of ``SAMPLED_KS`` in turn for the rank
    metrics it shows at several (R@5, N@5, R@10, N@10), then those shown once, headed without a cut-off
    (MRR, which is MRR@10; Novelty_P). The full and cold tables: each rank metric at each of
    :data:`FULL_KS`, then each list metric at ``LIST_K`` (Cov@10, Nov@10).
    """
    rank = rank_metrics(protocol)
    if protocol == "sampled":
        at = {m.name: [k for k in SAMPLED_KS if m.poster_ks is None or k in m.poster_ks] if m.each_k
              else [m.at] for m in rank}
        several = [(f"{m.name}@{k}", f"{m.header}@{k}") for k in SAMPLED_KS for m in rank
                   if len(at[m.name]) > 1 and k in at[m.name]]
        once = [(f"{m.name}@{at[m.name][0]}" if m.each_k else m.name, m.header) for m in rank
                if len(at[m.name]) == 1]
        return several + once
    cols = [(f"{m.name}@{k}", f"{m.header}@{k}") for k in FULL_KS for m in rank if m.each_k]
    cols += [(m.name, m.header) for m in rank if not m.each_k]
    return cols + [(f"{m.name}@{LIST_K}", f"{m.header}@{LIST_K}") for m in list_metrics(protocol)]


def not_bolded(cols: list[tuple[str, str]]) -> set[str]:
    """The column keys never bolded as best (``bold_best`` false: Novelty_P = 1 − R@10/10 under the
    sampled protocol, so "best" would reward misses)."""
    return {key for key, _ in cols if not METRICS.get(key.partition("@")[0]).bold_best}


def fmt(value: float | None) -> str:
    """The one number format of the report: 4 decimals (counts of 100 and more: whole, with
    separators), an en dash when absent."""
    if value is None or not math.isfinite(value):
        return MISSING
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.4f}"


def fmt_delta(value: float) -> str:
    """Signed difference with a real minus sign, e.g. ``−0.0120``."""
    return f"{value:+.4f}".replace("-", "−")


def fmt_p(p: float) -> str:
    """A p-value as prose: ``p = 0.012``, ``p < 0.001``."""
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def number(value: object) -> float | None:
    """A metric value as float, or None for anything that is not a finite number."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def metric_label(key: str) -> str:
    """``ndcg@10`` -> ``NDCG@10`` for prose."""
    name, _, k = key.partition("@")
    words = (METRICS.get(name).words if name in METRICS else None) or name
    return f"{words}@{k}" if k else words


@dataclass(frozen=True)
class Value:
    """A point estimate and, when the metrics file has one, its confidence interval."""

    point: float
    lo: float | None = None
    hi: float | None = None

    @property
    def interval(self) -> str:
        """``[0.1643, 0.1889]``, or "" without bounds."""
        return "" if self.lo is None or self.hi is None else f"[{fmt(self.lo)}, {fmt(self.hi)}]"


def value_of(block: object, key: str) -> Value | None:
    """``key`` of a protocol block with its ``_lo`` / ``_hi`` bounds, None when it is not a number."""
    if not isinstance(block, Mapping) or (point := number(block.get(key))) is None:
        return None
    return Value(point, number(block.get(f"{key}_lo")), number(block.get(f"{key}_hi")))


def versus_text(block: Mapping, paired: str) -> str | None:
    """The paired comparison with the reference as one string: ``+0.0286 [+0.0081, +0.0504], p = 0.012``."""
    diff, p = number(block.get(f"{paired}_diff")), number(block.get(f"{paired}_p"))
    if diff is None:
        return None
    lo, hi = number(block.get(f"{paired}_diff_lo")), number(block.get(f"{paired}_diff_hi"))
    text = fmt_delta(diff)
    if lo is not None and hi is not None:
        text += f" [{fmt_delta(lo)}, {fmt_delta(hi)}]"
    return text + (f", {fmt_p(p)}" if p is not None else "")


@dataclass(frozen=True)
class Cell:
    text: str
    interval: str
    bold: bool


@dataclass
class Row:
    key: str  # model or variant name: ``data-row`` in the page
    label: str
    values: list[Value | None]
    versus: str | None = None  # the "vs best baseline" column, when the table has one
    headline: bool = False


@dataclass
class Table:
    """Rows × columns of values. ``key`` names the table in the page (``id``) and in tests."""

    key: str
    title: str
    columns: list[tuple[str, str]]  # (metric key, header)
    rows: list[Row]
    notes: list[str] = field(default_factory=list)
    no_bold: set[str] = field(default_factory=set)
    versus_header: str | None = None  # header of the comparison column; None = no such column

    def cells(self) -> list[list[Cell]]:
        """Formatted cells, bold where the point estimate is its column's maximum (ties all bold)."""
        best: list[str | None] = []
        for j, (metric, _) in enumerate(self.columns):
            vals = [r.values[j].point for r in self.rows if r.values[j] is not None]
            best.append(fmt(max(vals)) if vals and metric not in self.no_bold else None)
        return [[Cell(MISSING, "", False) if v is None else
                 Cell(fmt(v.point), v.interval, best[j] is not None and fmt(v.point) == best[j])
                 for j, v in enumerate(row.values)] for row in self.rows]


def ordered(keys: list[str], preferred: list[str]) -> list[str]:
    """``preferred`` first (those present), then the rest in their given order."""
    return [k for k in preferred if k in keys] + [k for k in keys if k not in preferred]


def model_label(name: str, headline: str | None) -> str:
    return MODEL_NAMES.get(name, name) + (HEADLINE if name == headline else "")


def _user_counts(metrics: Mapping[str, Mapping], protocol: str) -> str:
    """The "N test users" of a caption, from each model's ``n_users``; a range when models differ."""
    values = [m[protocol].get("n_users") for m in metrics.values()
              if isinstance(m, Mapping) and isinstance(m.get(protocol), Mapping)]
    counts = sorted({int(n) for v in values if (n := number(v)) is not None})
    if not counts:
        return ""
    return f"{counts[0]:,} test users" if len(counts) == 1 else f"{counts[0]:,}–{counts[-1]:,} test users"


@dataclass(frozen=True)
class Comparison:
    """The evaluator's ``intervals`` entry: which baseline every model is compared with, and how."""

    reference: str | None
    paired: str  # the paired metric, e.g. ndcg@10
    level: float | None
    resamples: int | None
    test: str

    @classmethod
    def of(cls, metrics: Mapping) -> Comparison | None:
        about = metrics.get(INTERVALS_KEY)
        if not isinstance(about, Mapping) or not isinstance(about.get("paired_metric"), str):
            return None
        resamples = number(about.get("resamples"))
        return cls(about.get("reference") if isinstance(about.get("reference"), str) else None,
                   about["paired_metric"], number(about.get("level")),
                   int(resamples) if resamples is not None else None, str(about.get("paired_test", "")))

    def header(self, headline: str | None) -> str:
        name = model_label(self.reference, headline) if self.reference else "the best baseline"
        return f"Δ {metric_label(self.paired)} vs {name} (best baseline)"

    def note(self) -> str:
        level = f"{self.level:.0%}" if self.level is not None else "The"
        resamples = f", {self.resamples:,} resamples" if self.resamples else ""
        test = f" ({self.test})" if self.test else ""
        return (f"Brackets, in this and the following tables: {level} bootstrap interval over test "
                f"users{resamples}. The Δ column: the paired difference in per-user "
                f"{metric_label(self.paired)} from the reference, the best baseline on test full-ranking "
                f"{metric_label(self.paired)} (every baseline's knobs were chosen on validation), with its "
                f"paired bootstrap interval and the p-value of a paired test{test}.")


def protocol_table(
    metrics: Mapping[str, Mapping], protocol: str, columns: list[tuple[str, str]], title: str,
    notes: list[str], models: list[str], headline: str | None,
) -> Table | None:
    """``models`` × ``columns`` for one protocol, with intervals and the comparison column when the
    file has them; columns no model reports are left out."""
    models = [m for m in models if isinstance(metrics[m].get(protocol), Mapping)]
    if not models:
        return None
    present = [(k, h) for k, h in columns if any(value_of(metrics[m][protocol], k) for m in models)]
    compare = Comparison.of(metrics)
    rows = []
    for m in models:
        block = metrics[m][protocol]
        versus = None
        if compare is not None:
            versus = "reference" if m == compare.reference else versus_text(block, compare.paired)
        rows.append(Row(m, model_label(m, headline), [value_of(block, k) for k, _ in present], versus,
                        m == headline))
    has_versus = compare is not None and any(r.versus for r in rows)
    users = _user_counts({m: metrics[m] for m in models}, protocol)
    return Table(protocol, f"{title}{f' ({users})' if users else ''}", present, rows, list(notes),
                 not_bolded(columns), compare.header(headline) if has_versus else None)


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
    "items masked; a tie counts against the test item. Coverage@10 is the share of the catalogue in any "
    "top-10 list; Nov@10 the mean self-information of the top-10 items under training popularity "
    "(list-level figures: no interval).",
]
COLD_NOTES = [
    "Cold: full ranking restricted to test items with no training interaction. ID-only methods cannot "
    "rank these items; content has to.",
]


def evaluated_models(metrics: Mapping[str, object], fitted: list[str]) -> list[str]:
    """The model entries of ``metrics/evaluate.json``: baselines in the report's order, then the
    fitted models in ``models.fit`` order, then any other."""
    names = [m for m, v in metrics.items() if m != INTERVALS_KEY and isinstance(v, Mapping)]
    baselines = [m for m in MODEL_NAMES if m not in fitted]
    return ordered(names, [*baselines, *fitted])


def model_tables(metrics: Mapping[str, Mapping], fitted: list[str], headline: str | None) -> list[Table]:
    """The sampled, full and cold tables of ``metrics/evaluate.json`` (those present)."""
    specs = [
        ("sampled", "Sampled protocol, 1 positive + 20 negatives", SAMPLED_NOTES),
        ("full", "Full ranking", FULL_NOTES),
        ("cold", "Cold-start test items, full ranking", COLD_NOTES),
    ]
    models = evaluated_models(metrics, fitted)
    tables = [t for p, title, notes in specs
              if (t := protocol_table(metrics, p, columns(p), title, notes, models, headline)) is not None]
    compare = Comparison.of(metrics)
    if compare is not None and tables:  # said once, under the first table
        tables[0].notes.append(compare.note())
    return tables


def protocol_value(block: Mapping, protocol: str, metric: str) -> Value | None:
    """``metric`` of ``block[protocol]`` (ablation and two-stage entries), None when absent."""
    return value_of(block.get(protocol), metric)


TWO_STAGE_COLUMNS = [("full/ndcg@10", "full NDCG@10"), ("full/recall@50", "full Recall@50"),
                     ("cold/ndcg@10", "cold NDCG@10"), ("full/candidate_recall", "test item proposed"),
                     ("full/mean_candidates", "candidates / user")]


def two_stage_table(model: str, sweep: Mapping[str, Mapping]) -> Table | None:
    """Exact vs two-stage ranking of pair model ``model`` (its entry of metrics/two_stage.json), one
    row per N."""
    keys = ["exact", *sorted((k for k in sweep if k.startswith("n=")), key=lambda k: int(k[2:]))]
    if "exact" not in sweep:
        return None
    rows = [Row(k, "exact (every item scored)" if k == "exact" else f"two-stage, N = {k[2:]} per retriever",
                [protocol_value(sweep[k], *c.split("/", 1)) for c, _ in TWO_STAGE_COLUMNS]) for k in keys]
    retrievers = ", ".join(sweep.get("retrievers", [])) or "the configured retrievers"
    notes = [f"Two-stage: the union of each retriever's ({retrievers}) top-N unseen items is re-scored by "
             f"the {model} model; every other item ranks last. 'test item proposed' is the share of test "
             "items in that union: the ceiling on two-stage recall."]
    return Table(f"two_stage_{model}", f"{model_label(model, None)}: exact vs two-stage full ranking",
                 TWO_STAGE_COLUMNS, rows, notes, no_bold={"full/mean_candidates"})
