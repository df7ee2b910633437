"""The ablation table and its sentences, from ``metrics/ablation.json``.

Each variant records the dotted overrides it applied to the model's params section (``variant``,
e.g. ``{"model.loss": "bce"}``), plus ``rerank: N`` for the pair model re-ranking the top N; the
report describes each variant from that mapping, so a new variant needs no report code.
"""

from __future__ import annotations

from collections.abc import Mapping

from pixrec.report.tables import MODEL_NAMES, Row, Table, fmt, fmt_delta, metric_label, protocol_value

BASE = "full"  # the variant that changes nothing: every other is compared with it
PROTOCOLS = ("sampled", "full", "cold")
METRICS: list[tuple[str, str]] = [("recall@10", "R@10"), ("ndcg@10", "N@10")]
SENTENCE_KEYS = [("full", "ndcg@10"), ("cold", "ndcg@10"), ("sampled", "ndcg@10")]
TOKEN_KEYS = ("model.tokens", "model.modalities")  # the input-token list of each model family
LEAKY_TOKEN = "counts"  # lifetime interaction totals: they count the test period too
LEAK = "LEAK: lifetime counts, a leak of future popularity"


def _override(key: str, value: object) -> str:
    """One override in words; the dotted key and value as written when there are no better words."""
    name = key.removeprefix("model.")
    if key == "rerank":
        return f"the six-token pair model re-ranks the top {value:,}" if isinstance(value, int) else (
            f"rerank: {value}")
    if key in TOKEN_KEYS and isinstance(value, list):
        return "input tokens " + (", ".join(map(str, value)) or "none")
    words = {
        "loss": f"{value} loss",
        "id_dropout": "no item-ID dropout" if value == 0 else f"item-ID dropout {value}",
        "pooling": f"item tokens fused by {value}" + (" pooling" if value == "mean" else ""),
        "age_buckets": "no freshness bias" if value == 0 else f"freshness bias over {value} age buckets",
        "logq": "logQ correction" if value else "no logQ correction",
    }
    return words.get(name, f"{key}: {value}")


def is_leak(overrides: Mapping[str, object]) -> bool:
    """Whether the variant reads lifetime counts (a list of input tokens holding ``counts``)."""
    return any(isinstance(v, list) and LEAKY_TOKEN in v for k, v in overrides.items() if k in TOKEN_KEYS)


def describe(overrides: object) -> str:
    """What a variant changes, in words: ``no item-ID dropout; bce loss``."""
    if not isinstance(overrides, Mapping):
        return "overrides not recorded"
    if not overrides:
        return "the model as trained"
    text = "; ".join(_override(str(k), v) for k, v in overrides.items())
    return f"{LEAK}; {text}" if is_leak(overrides) else text


def _variants(ablation: Mapping[str, object]) -> list[str]:
    names = [v for v, block in ablation.items() if isinstance(block, Mapping)]
    return [BASE, *(v for v in names if v != BASE)] if BASE in names else names


def ablation_table(ablation: Mapping[str, Mapping]) -> Table | None:
    """Variants × (protocol, metric) for the key metrics, best per column bold; the leak labelled."""
    variants = _variants(ablation)
    if not variants:
        return None
    columns = [(f"{p}/{k}", f"{p} {h}") for p in PROTOCOLS for k, h in METRICS]
    columns = [c for c in columns if any(protocol_value(ablation[v], *c[0].split("/", 1)) for v in variants)]
    rows = []
    for v in variants:
        overrides = ablation[v].get("variant")
        leak = isinstance(overrides, Mapping) and is_leak(overrides)
        rows.append(Row(v, f"{v} ({LEAK})" if leak else v,
                        [protocol_value(ablation[v], *c.split("/", 1)) for c, _ in columns]))
    models = {ablation[v].get("model") for v in variants} - {None}
    model = MODEL_NAMES.get(next(iter(models)), next(iter(models))) if len(models) == 1 else None
    title = f"Ablation of {model}: one change at a time" if model else "Ablation: one change at a time"
    return Table("ablation", title, columns, rows, ablation_sentences(ablation))


def _changes(base: Mapping, block: Mapping) -> list[str]:
    parts = []
    for protocol, metric in SENTENCE_KEYS:
        a, b = protocol_value(base, protocol, metric), protocol_value(block, protocol, metric)
        if a is not None and b is not None:
            parts.append(f"{protocol} {metric_label(metric)} by {fmt_delta(b.point - a.point)} "
                         f"({fmt(a.point)} → {fmt(b.point)})")
    return parts


def ablation_sentences(ablation: Mapping[str, Mapping]) -> list[str]:
    """One sentence per variant: what it changes, and how its key metrics differ from ``full``'s."""
    if BASE not in ablation:
        return [f"No '{BASE}' variant in the ablation results: differences are not computed."]
    out = []
    for variant in _variants(ablation)[1:]:
        block = ablation[variant]
        what = f"{variant} ({describe(block.get('variant'))})"
        if block.get("nothing_removed"):
            why = block["nothing_removed"]
            out.append(f"{what}: nothing to remove, its row is the full model's ({why}).")
            continue
        parts = _changes(ablation[BASE], block)
        if parts:
            body = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
            out.append(f"{what} changes {body}.")
        else:
            out.append(f"{what}: no metric shared with '{BASE}' to compare.")
    return out
