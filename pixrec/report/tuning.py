"""What the tune stage chose, from ``metrics/tuning.json``: each baseline's knobs, its validation
NDCG@10, and the validation curve it was chosen from (every grid point, the choice marked)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pixrec.report.tables import MISSING, MODEL_NAMES, fmt, number, ordered

FIXED = "fixed"  # the tune stage's curve label of a baseline with nothing to search


@dataclass(frozen=True)
class CurvePoint:
    setting: str  # the tune stage's label, e.g. ``factors=64,regularization=1.0``
    value: float  # validation NDCG@10
    chosen: bool
    width: float  # share of the curve's best value, for the page's bars (0..1)


@dataclass(frozen=True)
class Tuned:
    key: str  # baseline name
    label: str
    searched: str  # chosen values of the searched knobs, ``k=100``
    fixed: str  # the knobs set in params.yaml, not searched
    valid: str  # validation NDCG@10 at the choice, formatted
    curve: list[CurvePoint]


def _pairs(setting: str) -> list[tuple[str, str]]:
    """``a=1,b=x`` -> [("a", "1"), ("b", "x")]; ``fixed`` -> []."""
    return [(k, v) for k, sep, v in (p.partition("=") for p in setting.split(",")) if sep]


def _sort_key(setting: str) -> tuple:
    """Grid points in knob order, numbers by value (``k=25`` before ``k=100``)."""
    key = []
    for _, v in _pairs(setting):
        try:
            key.append((0, float(v), ""))
        except ValueError:
            key.append((1, 0.0, v))
    return tuple(key)


def _is_chosen(setting: str, chosen: Mapping[str, object]) -> bool:
    pairs = _pairs(setting)
    return setting == FIXED or (bool(pairs) and all(k in chosen and str(chosen[k]) == v for k, v in pairs))


def _knobs(values: Mapping[str, object], keys: list[str]) -> str:
    return ", ".join(f"{k}={values[k]}" for k in keys) or MISSING


def tuned_baseline(name: str, entry: Mapping) -> Tuned:
    """One baseline's row: chosen knobs split into searched and fixed, its curve sorted by knob."""
    chosen = entry.get("chosen") if isinstance(entry.get("chosen"), Mapping) else {}
    raw = entry.get("curve") if isinstance(entry.get("curve"), Mapping) else {}
    curve = {str(s): v for s, n in raw.items() if (v := number(n)) is not None}
    searched = list(dict.fromkeys(k for s in curve for k, _ in _pairs(s)))
    best = max(curve.values(), default=0.0)
    points = [CurvePoint(s, v, _is_chosen(s, chosen), v / best if best > 0 else 0.0)
              for s, v in sorted(curve.items(), key=lambda kv: _sort_key(kv[0]))]
    return Tuned(name, MODEL_NAMES.get(name, name), _knobs(chosen, [k for k in searched if k in chosen]),
                 _knobs(chosen, [k for k in chosen if k not in searched]),
                 fmt(number(entry.get("valid_ndcg@10"))), points)


def tuning_rows(tuning: Mapping[str, object]) -> list[Tuned]:
    """Every baseline of ``metrics/tuning.json``, in the report's model order."""
    names = [n for n, e in tuning.items() if isinstance(e, Mapping)]
    return [tuned_baseline(n, tuning[n]) for n in ordered(names, list(MODEL_NAMES))]
