"""Tuning the baselines on validation, so the yardstick is one the field would accept (Rendle et al.,
"On the Difficulty of Evaluating Baselines", 2019): every baseline gets the same care as the model.

For each baseline in ``baselines.names``, in order, every combination of its knobs
(``baselines.knobs.<name>``: a list is searched, a scalar is fixed) is fitted on the training
interactions and ranks each user's *validation* item against the whole catalogue, training items
masked; the combination with the highest validation NDCG@10 is kept (ties: the first in grid order).

The tuner never sees test: :func:`load_validation_split` reads only the train, valid, user and item
files of the split and hands on a split whose "test" part *is* validation (and whose item and user
tables lose the columns computed over every interaction). The evaluate stage then refits each
baseline on train at its chosen knobs and ranks test with train + valid masked.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

import pixrec.baselines.catalog  # noqa: F401  (registers every baseline: they are tuned by name)
from pixrec import schema
from pixrec.atomic import atomic_dir, write_json
from pixrec.baselines.base import (
    BASELINES,
    Baseline,
    FitContext,
    check_names,
    preflight_baseline,
    typed_knobs,
)
from pixrec.config import ConfigError, section
from pixrec.data.dataset import Interactions, SplitData
from pixrec.errors import InputError
from pixrec.evaluation.metrics import ndcg
from pixrec.evaluation.protocols import rank_full
from pixrec.evaluation.selection import SELECT_K, VALID_COLD, VALID_FULL

if TYPE_CHECKING:
    from pixrec.features import Embeddings

CHOSEN_FILE = "chosen.json"  # in the tune stage's output directory
META_FILE = "meta.json"  # beside it: the config, library versions and CPU kernels it ran with
NOT_FOR_TUNING = {"items": (schema.FIRST_SEEN, "is_late"), "users": (schema.IS_TEST_USER,)}


@section
class TuneConfig:
    """The ``baselines`` section of params.yaml; every grid point of every ``knobs`` entry is typed by
    its baseline's knob section at load (:meth:`points`), so a typo fails before any fitting."""

    names: list[str]
    seed: int
    batch_users: int
    valid_users: int | None  # a seeded sample of validation users; null = all of them
    knobs: dict[str, Any]

    def __post_init__(self) -> None:
        check_names(self.names, "baselines.names")
        check_names(self.knobs, "baselines.knobs")
        if len(set(self.names)) != len(self.names):
            raise ConfigError(f"baselines.names lists a name twice: {self.names}")
        missing = [n for n in self.names if n not in self.knobs]
        if missing:
            raise ConfigError(f"baselines.knobs has no entry for {missing}; add e.g. "
                              f"'{missing[0]}: {{}}' under baselines.knobs")
        if self.batch_users < 1 or (self.valid_users is not None and self.valid_users < 1):
            raise ConfigError("baselines: batch_users and valid_users (or null) must be >= 1")
        for name in self.knobs:
            self.points(name)

    def points(self, name: str) -> list[dict[str, Any]]:
        """The grid of baseline ``name``'s knobs (:func:`grid`), each point typed."""
        if not isinstance(self.knobs[name], Mapping):
            raise ConfigError(f"baselines.knobs.{name}: expected a mapping of knobs, "
                              f"got {self.knobs[name]!r}")
        return [typed_knobs(name, point, "baselines.knobs") for point in grid(self.knobs[name])]


def grid(knobs: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every combination of ``knobs``: a list is searched, a scalar fixed; in key, then value order."""
    keys = list(knobs)
    values = [v if isinstance(v, list) else [v] for v in knobs.values()]
    if any(len(v) == 0 for v in values):
        raise InputError(f"baselines.knobs: an empty list of values in {dict(knobs)}")
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*values)]


def label(point: Mapping[str, Any], knobs: Mapping[str, Any]) -> str:
    """``k=50`` / ``factors=64,regularization=0.1``: the searched knobs of one grid point."""
    return ",".join(f"{k}={point[k]}" for k, v in knobs.items() if isinstance(v, list)) or "fixed"


def validation_view(
    train: Interactions, valid: Interactions, users: pl.DataFrame, items: pl.DataFrame
) -> SplitData:
    """A split whose test part is validation and whose valid part is empty: every protocol run on it
    masks train only and ranks the validation item. No test interaction is passed in."""
    empty = Interactions(*(np.zeros(0, dtype=a.dtype) for a in (valid.users, valid.items, valid.timestamps)))
    users = users.drop([c for c in NOT_FOR_TUNING["users"] if c in users.columns])
    items = items.drop([c for c in NOT_FOR_TUNING["items"] if c in items.columns])
    return SplitData(train=train, valid=empty, test=valid, users=users, items=items, report={})


def load_validation_split(split_dir: Path) -> SplitData:
    """:func:`validation_view` of the split stage's files, reading neither test.parquet nor the report."""
    d = Path(split_dir)
    for name in (schema.TRAIN_FILE, schema.VALID_FILE, schema.USERS_FILE, schema.ITEMS_FILE):
        if not (d / name).is_file():
            raise InputError(f"{d / name}: missing; run the split stage first")
    return validation_view(Interactions.read(d / schema.TRAIN_FILE), Interactions.read(d / schema.VALID_FILE),
                           pl.read_parquet(d / schema.USERS_FILE), pl.read_parquet(d / schema.ITEMS_FILE))


@dataclass
class Tuned:
    """What tuning decided: ``chosen`` knobs per baseline, and per baseline its validation curve
    ``{label: NDCG@10}``, its best value and, at the chosen knobs, its NDCG@10 over the validation
    users whose item had no training interaction (``cold``: the yardstick a model's cold-item lift is
    chosen against, :mod:`pixrec.models.cold_lift`)."""

    seed: int
    chosen: dict[str, dict[str, Any]]
    curves: dict[str, dict[str, float]]
    best: dict[str, float]
    cold: dict[str, float]


def validation_users(view: SplitData, config: TuneConfig) -> tuple[np.ndarray, np.ndarray]:
    """(users (N,), their validation items (N,)): all, or a seeded sample of ``valid_users``."""
    users, items = view.test.users, view.test.items
    if config.valid_users is None or config.valid_users >= len(users):
        return users, items
    rng = np.random.default_rng(np.random.SeedSequence([config.seed, *b"valid"]))
    pick = np.sort(rng.choice(len(users), config.valid_users, replace=False))
    return users[pick], items[pick]


def tune_one(
    ctx: FitContext, config: TuneConfig, name: str, users: np.ndarray, targets: np.ndarray,
    log: Callable[[str], None],
) -> tuple[dict[str, Any], dict[str, float], float, Baseline]:
    """Grid search of one baseline: (best knobs, curve {label: NDCG@10}, the best knobs' NDCG@10 over
    the users whose target is a cold item (0 when none is), the best fitted model)."""
    curve: dict[str, float] = {}
    cold = ctx.data.cold_items[targets]
    best: tuple[float, dict[str, Any], float, Baseline] | None = None
    knobs = config.knobs[name]
    for point in config.points(name):
        t0, c0 = time.perf_counter(), time.process_time()
        model = ctx.fit(name, point)
        ranks = rank_full(model, users, targets, ctx.data.seen_matrix, config.batch_users).ranks
        gain = ndcg(ranks, SELECT_K)
        value = float(gain.mean())
        curve[label(point, knobs)] = value
        log(f"{name} {label(point, knobs)}: valid ndcg@{SELECT_K}={value:.4f} (fit + rank "
            f"{time.perf_counter() - t0:.1f} s wall, {time.process_time() - c0:.1f} s cpu)")
        if best is None or value > best[0]:
            best = (value, point, float(gain[cold].mean()) if cold.any() else 0.0, model)
        del model
    assert best is not None  # grid() never returns an empty list
    return best[1], curve, best[2], best[3]


def tune_all(
    view: SplitData, embeddings: dict[str, Embeddings] | None, config: TuneConfig,
    log: Callable[[str], None] = print,
) -> Tuned:
    """Tune every baseline of ``config.names`` in order on ``view`` (:func:`validation_view`)."""
    ctx = FitContext(view, embeddings, config.seed)
    points = {n: config.points(n) for n in config.names}
    for i, name in enumerate(config.names):  # unknown names, knobs or budgets fail before any fitting
        for point in points[name]:
            preflight_baseline(name, ctx, point)
            late = [c for c in BASELINES.get(name).components(point) if c not in config.names[:i]]
            if late:
                raise InputError(f"baselines.names: {name} is built from {late} at their chosen knobs; "
                                 f"list {late} before {name!r}")
    users, targets = validation_users(view, config)
    curves, best, cold = {}, {}, {}
    for i, name in enumerate(config.names):
        t0, c0 = time.perf_counter(), time.process_time()
        ctx.chosen[name], curves[name], cold[name], model = tune_one(ctx, config, name, users, targets, log)
        best[name] = curves[name][label(ctx.chosen[name], config.knobs[name])]
        log(f"{name}: chose {ctx.chosen[name]} (valid ndcg@{SELECT_K}={best[name]:.4f}; "
            f"{time.perf_counter() - t0:.1f} s wall, {time.process_time() - c0:.1f} s cpu)")
        later = {c for n in config.names[i + 1:] for p in points[n] for c in BASELINES.get(n).components(p)}
        if name in later:
            ctx.keep(name, model)  # a later baseline is built from it: no refit
        for done in config.names[: i + 1]:
            if done not in later:
                ctx.release(done)
    return Tuned(config.seed, dict(ctx.chosen), curves, best, cold)


def write_tuning(tuned: Tuned, out_dir: Path, metrics_path: Path, meta: dict) -> None:
    """``out_dir/chosen.json`` ({seed, chosen}: what the evaluate stage refits), ``out_dir/meta.json``
    (``meta``: config, versions and CPU kernels) and the metrics file ``{name: {chosen, valid_ndcg@10,
    valid_cold_ndcg@10, curve}}``; no timings, so a rerun writes the same bytes."""
    with atomic_dir(Path(out_dir)) as tmp:
        write_json(tmp / CHOSEN_FILE,
                   {"seed": tuned.seed, "names": list(tuned.chosen), "chosen": tuned.chosen})
        write_json(tmp / META_FILE, meta)
    write_json(Path(metrics_path), {
        name: {"chosen": tuned.chosen[name], VALID_FULL: tuned.best[name], VALID_COLD: tuned.cold[name],
               "curve": tuned.curves[name]}
        for name in tuned.chosen
    })


def load_chosen(tuning_dir: Path, data: SplitData, embeddings: dict[str, Embeddings] | None) -> FitContext:
    """The evaluate stage's FitContext: the tune stage's seed and chosen knobs, on the full split."""
    path = Path(tuning_dir) / CHOSEN_FILE
    if not path.is_file():
        raise InputError(f"{path}: missing; run the tune stage first (dvc repro tune)")
    saved = json.loads(path.read_text(encoding="utf-8"))
    chosen = {name: saved["chosen"][name] for name in saved["names"]}  # in baselines.names order
    return FitContext(data, embeddings, int(saved["seed"]), chosen=chosen)
