"""Everything the report shows, assembled once and rendered twice (HTML and Markdown)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from pixrec.report.examples import Examples
from pixrec.report.tables import Table, fmt


@dataclass
class ReportContent:
    dataset_label: str
    synthetic: bool
    summary: dict  # split report summary: n_users, n_items, n_interactions, ...
    tables: list[Table]  # sampled, full, cold (those present)
    ablation: Table | None
    train_metrics: dict
    curve_png: bytes | None
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


def dataset_sentence(content: ReportContent) -> str:
    """One plain sentence: which data, how big."""
    s = content.summary
    parts = [f"{s[k]:,} {label}" for k, label in
             (("n_users", "users"), ("n_items", "items"), ("n_interactions", "interactions"))
             if isinstance(s.get(k), int)]
    size = f": {', '.join(parts)}" if parts else ""
    text = f"Dataset: {content.dataset_label}{size}."
    if content.synthetic:
        text += (" This is the built-in synthetic dataset, not PixelRec: the numbers show that the "
                 "machinery works, not how the method does on real data.")
    return text
