"""Everything the report shows, assembled once and rendered twice (HTML and Markdown templates)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from pixrec.report.examples import Examples
from pixrec.report.tables import HEADLINE, Table, fmt, model_label
from pixrec.report.tuning import Tuned

PAIR_MODEL = "fusion"  # the six-token pair model: the poster's, the reference architecture


@dataclass
class Trained:
    """One fitted model's training: ``metrics/train/<model>.json`` and its dvclive curve."""

    name: str
    label: str
    metrics: list[tuple[str, str]]  # (key, formatted value)
    curve_png: bytes | None
    curve_file: str  # where index.md finds the curve beside it


@dataclass
class ReportContent:
    dataset_label: str
    synthetic: bool
    summary: list[tuple[str, str]]  # split report summary, formatted: n_users, n_items, ...
    dataset_sentence: str
    headline: str  # one sentence: which model is the headline, and the pair model's place
    tables: list[Table]  # sampled, full, cold (those present), two-stage
    tuning: list[Tuned]
    ablation: Table | None
    trained: list[Trained]
    examples: Examples | None
    sources: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what could not be shown, and why


def scalar(value: object) -> str | None:
    """A train.json / summary value as text: ints as ints, floats at the report's 4 decimals."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return fmt(value) if math.isfinite(value) else None
    if isinstance(value, str):
        return value
    return None


def key_values(data: dict) -> list[tuple[str, str]]:
    """The scalar entries of a JSON object, formatted; nested values are left out."""
    return [(str(k), v) for k, value in data.items() if (v := scalar(value)) is not None]


def headline_sentence(headline: str, fitted: list[str]) -> str:
    """Which model the report leads with; the poster's pair model keeps its row beside it."""
    text = f'The headline model is {model_label(headline, None)}; its row is marked "{HEADLINE.strip()}".'
    if headline != PAIR_MODEL and PAIR_MODEL in fitted:
        text += (f" The six-token pair model ({PAIR_MODEL}) is the poster's reference architecture and "
                 "keeps its row.")
    return text


def dataset_sentence(label: str, synthetic: bool, summary: dict) -> str:
    """One plain sentence: which data, how big."""
    parts = [f"{summary[k]:,} {what}" for k, what in
             (("n_users", "users"), ("n_items", "items"), ("n_interactions", "interactions"))
             if isinstance(summary.get(k), int)]
    size = f": {', '.join(parts)}" if parts else ""
    text = f"Dataset: {label}{size}."
    if synthetic:
        text += (" This is the built-in synthetic dataset, not PixelRec: the numbers show that the "
                 "machinery works, not how the method does on real data.")
    return text
