"""Uncertainty of the table: bootstrap intervals over test users and paired tests against a reference.

Every rank metric is a mean over users of a per-user value, so one bootstrap serves them all: draw
``resamples`` × N user indices once (seeded), turn them into counts (B, N) and get every resample's
mean of every metric of every model by one matrix product counts @ values (N, M) / N. The
percentile interval is read from those B means. Models are evaluated on the same users in the same
order, so the same counts also give the *paired* bootstrap of a difference (a linear function of the
means), and a Wilcoxon signed-rank test (scipy) on the per-user differences gives its p-value.
"""

from __future__ import annotations

import re

import numpy as np

from pixrec.config import ConfigError, section
from pixrec.evaluation.metrics import METRICS

INTERVALS_KEY = "intervals"  # metrics/evaluate.json's one top-level entry that is not a model: these settings
PAIRED_METRIC = ("ndcg", 10)  # the paired test's per-user metric: NDCG@10
CHUNK = 128  # resamples per matrix product: bounds the (chunk, N) counts block
EXTRA_KEY = re.compile(r"(_lo|_hi|_diff|@\d+_p)$")  # what intervals add beside each metric


@section
class IntervalConfig:
    """``eval.intervals``: bootstrap resamples and the interval's coverage (e.g. 0.95)."""

    resamples: int
    level: float

    def __post_init__(self) -> None:
        if self.resamples < 1 or not 0 < self.level < 1:
            raise ConfigError(f"eval.intervals: resamples must be >= 1 and 0 < level < 1, got "
                              f"resamples={self.resamples} level={self.level}")


def point_estimates(block: dict[str, float]) -> dict[str, float]:
    """A protocol block of ``metrics/evaluate.json`` without its interval and paired-test entries:
    what a single-model evaluation (an ablation cell, the two-stage table) reports."""
    return {k: v for k, v in block.items() if not EXTRA_KEY.search(k)}


def resample_counts(n: int, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """float32 (resamples, n): how often each of n users is drawn in each resample of size n."""
    idx = rng.integers(0, n, size=(resamples, n))  # (B, N)
    flat = (idx + np.arange(resamples)[:, None] * n).ravel()
    return np.bincount(flat, minlength=resamples * n).reshape(resamples, n).astype(np.float32)


def bootstrap_means(values: np.ndarray, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """values float (N, M) per-user -> float64 (resamples, M): each resample's mean of each column."""
    values = np.asarray(values, dtype=np.float64)
    n = len(values)
    out = np.empty((resamples, values.shape[1]))
    for s in range(0, resamples, CHUNK):
        counts = resample_counts(n, min(CHUNK, resamples - s), rng)  # (b, N)
        out[s : s + len(counts)] = counts.astype(np.float64) @ values / n
    return out


def percentile_interval(means: np.ndarray, level: float) -> np.ndarray:
    """float (B, M) bootstrap means -> float64 (M, 2): the (1 ± level)/2 quantiles (linear)."""
    a = (1.0 - level) / 2.0
    return np.quantile(means, [a, 1.0 - a], axis=0).T


def wilcoxon_p(x: np.ndarray, y: np.ndarray) -> float:
    """Two-sided Wilcoxon signed-rank p-value of paired samples x, y (N,); users with x == y carry no
    information on which is better and are left out (scipy's ``zero_method='wilcox'``); 1.0 when
    every pair is tied."""
    from scipy.stats import wilcoxon

    d = np.asarray(x, dtype=np.float64) - np.asarray(y, dtype=np.float64)
    if not np.any(d != 0):
        return 1.0
    return float(wilcoxon(d, zero_method="wilcox", alternative="two-sided").pvalue)


def per_user(ranks: np.ndarray, keys: dict[str, tuple[str, int]]) -> np.ndarray:
    """ranks int (N,) -> float64 (N, len(keys)): each metric at its k per user (the means' summands)."""
    cols = [METRICS.get(name).fn(ranks, k) for name, k in keys.values()]
    return np.stack(cols, axis=1) if cols else np.zeros((len(ranks), 0))


def protocol_intervals(
    ranks: dict[str, np.ndarray], keys: dict[str, tuple[str, int]], reference: str | None,
    config: IntervalConfig, rng: np.random.Generator,
) -> dict[str, dict[str, float]]:
    """``{model: {key_lo, key_hi, (ndcg@10_diff, _diff_lo, _diff_hi, _p)}}`` for one protocol.

    ``ranks`` maps each model to its ranks (N,) on the same users in the same order; ``keys`` each
    output key to its (metric, k); the paired fields compare each model with ``reference`` (absent
    for the reference itself).
    """
    keys = dict(keys)
    models = list(ranks)
    if not models or not len(next(iter(ranks.values()))):
        return {m: {} for m in models}
    values = np.concatenate([per_user(ranks[m], keys) for m in models], axis=1)  # (N, models·keys)
    means = bootstrap_means(values, config.resamples, rng)  # (B, models·keys)
    ci = percentile_interval(means, config.level)
    out: dict[str, dict[str, float]] = {}
    n_keys = len(keys)
    names = list(keys)
    for j, m in enumerate(models):
        out[m] = {}
        for i, key in enumerate(names):
            out[m][f"{key}_lo"], out[m][f"{key}_hi"] = map(float, ci[j * n_keys + i])
    paired = f"{PAIRED_METRIC[0]}@{PAIRED_METRIC[1]}"
    if reference is None or paired not in keys:
        return out
    col = names.index(paired)
    r = models.index(reference) * n_keys + col
    for j, m in enumerate(models):
        if m == reference:
            continue
        c = j * n_keys + col
        lo, hi = percentile_interval(means[:, [c]] - means[:, [r]], config.level)[0]
        out[m].update({f"{paired}_diff": float(values[:, c].mean() - values[:, r].mean()),
                       f"{paired}_diff_lo": float(lo), f"{paired}_diff_hi": float(hi),
                       f"{paired}_p": wilcoxon_p(values[:, c], values[:, r])})
    return out
