"""The baseline registry and what every baseline shares.

A baseline is one class registered under the name users write in ``baselines.names``. It is fitted
in its constructor, which has one signature for all::

    Cls(ctx: FitContext, rng: np.random.Generator, *, <knobs>)

where ``<knobs>`` are keyword-only arguments, typed and without defaults, named exactly as in
``params.yaml`` (``baselines.knobs.<name>`` for the yardstick, ``eval.two_stage_retrievers.<name>`` for
retrievers). That signature *is* the baseline's params section (:func:`knob_section`): knobs are typed
by it at load and at fit, so a new baseline is one class plus one ``@BASELINES.register`` line (in a
new module: one more name in :mod:`pixrec.baselines.catalog`, which imports every baseline module so that
each registers itself), and a new knob is one keyword. Every baseline fits on the *training* interactions
only (``ctx.data.train``). Names are looked up in :data:`BASELINES` once the catalog is imported.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from pixrec.config import ConfigError, from_mapping, section
from pixrec.data.dataset import SplitData
from pixrec.errors import InputError
from pixrec.registry import Registry
from pixrec.scoring import top_unseen

if TYPE_CHECKING:
    from pixrec.features import Embeddings



class Baseline:
    """Base of the baselines: :class:`pixrec.scoring.Recommender` with a chunked default ``score``.

    ID-only subclasses set ``unrankable`` (bool (n_items,)) to the cold items: :meth:`_finish`
    gives those ``-inf``, which the evaluator ranks last. ``needs_embeddings``: the class reads
    item content vectors (the stages load them only when some baseline does).
    """

    name: str = "baseline"
    n_items: int
    unrankable: np.ndarray | None = None
    needs_embeddings: bool = False
    score_chunk: int = 256  # users per score_all call inside the default score()

    @staticmethod
    def preflight(ctx: FitContext, knobs: Mapping[str, Any]) -> None:
        """Cheap checks run for every configured baseline before any is fitted (fail fast)."""

    @staticmethod
    def components(knobs: Mapping[str, Any]) -> list[str]:
        """Other baselines this one is built from (fitted at their chosen knobs, see FitContext)."""
        return []

    def score_all(self, users: np.ndarray) -> np.ndarray:
        """users int (B,) -> float32 (B, n_items)."""
        raise NotImplementedError

    def score(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """users int (B,), items int (B, C) -> float32 (B, C), gathered from ``score_all`` rows."""
        users, items = np.asarray(users), np.asarray(items)
        out = np.empty(items.shape, dtype=np.float32)
        for s in range(0, len(users), self.score_chunk):
            rows = self.score_all(users[s : s + self.score_chunk])
            out[s : s + len(rows)] = np.take_along_axis(rows, items[s : s + len(rows)], axis=1)
        return out

    def retrieve(
        self, users: np.ndarray, n: int, exclude: sp.csr_matrix | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Each user's top ``n`` unexcluded items: see :func:`pixrec.scoring.top_unseen`."""
        return top_unseen(self, users, n, exclude)

    def _finish(self, scores: np.ndarray) -> np.ndarray:
        """float (B, I) -> float32 (B, I), writable, unrankable items at -inf."""
        scores = np.asarray(scores, dtype=np.float32)
        if not scores.flags.writeable:
            scores = scores.copy()
        if self.unrankable is not None and self.unrankable.any():
            scores[:, self.unrankable] = -np.inf
        return scores


BASELINES: Registry[type[Baseline]] = Registry("baseline")


def seed_for(seed: int, name: str) -> np.random.Generator:
    """A generator per baseline from the stage seed and the baseline's name (not its list position),
    so adding or reordering baselines never changes another's draws."""
    return np.random.default_rng(np.random.SeedSequence([seed, *name.encode()]))


@dataclass
class FitContext:
    """What baselines are fitted from: the split (its training part), item embeddings, the seed, and
    the knobs chosen for each baseline so far — a hybrid is built from its components at *their*
    chosen knobs (:meth:`component`), fitted once and shared."""

    data: SplitData
    embeddings: dict[str, Embeddings] | None  # side -> that side's embed-stage output
    seed: int
    chosen: dict[str, dict[str, Any]] = field(default_factory=dict)
    where: str = "baselines.knobs"  # the params.yaml home of the knobs, for error messages
    _fitted: dict[str, Baseline] = field(default_factory=dict, repr=False)

    def fit(self, name: str, knobs: Mapping[str, Any]) -> Baseline:
        """Baseline ``name`` fitted at ``knobs`` (not cached)."""
        cls = BASELINES.get(name)
        model = cls(self, seed_for(self.seed, name), **typed_knobs(name, knobs, self.where))
        model.name = name
        return model

    def component(self, name: str) -> Baseline:
        """Baseline ``name`` at its chosen knobs, fitted on first use and kept until :meth:`release`."""
        if name not in self.chosen:
            raise InputError(f"{self.where}: {name!r} is used by another baseline but has no chosen "
                             f"knobs yet; list {name!r} in baselines.names before the baselines using it")
        if name not in self._fitted:
            self._fitted[name] = self.fit(name, self.chosen[name])
        return self._fitted[name]

    def keep(self, name: str, model: Baseline) -> None:
        """Record ``model`` as ``name`` at its chosen knobs (already fitted elsewhere, e.g. by tuning)."""
        self._fitted[name] = model

    def release(self, name: str) -> None:
        """Drop the fitted ``name`` (memory); a later :meth:`component` call refits it."""
        self._fitted.pop(name, None)


@cache
def knob_section(cls: type[Baseline]) -> type:
    """``cls``'s knobs as a params section (:func:`pixrec.config.section`): one typed field, without a
    default, per keyword-only argument of its constructor."""
    params = inspect.signature(cls.__init__, eval_str=True).parameters
    knobs = {p.name: p.annotation for p in params.values() if p.kind is inspect.Parameter.KEYWORD_ONLY}
    return section(type(f"{cls.__name__}Knobs", (), {"__annotations__": knobs, "__module__": cls.__module__}))


def check_names(names: Iterable[str], where: str) -> None:
    """Every name a registered baseline, else one ConfigError line naming it: ``<where>.<name>`` when
    ``names`` are a mapping's keys, ``<where>`` when they are a list."""
    unknown = [n for n in names if n not in BASELINES]
    if unknown and isinstance(names, Mapping):
        raise ConfigError(f"{where}.{unknown[0]}: unknown key; valid keys are {BASELINES.names()}")
    if unknown:
        raise ConfigError(f"{where}: unknown baseline {unknown[0]!r}; valid names are {BASELINES.names()}")


def typed_knobs(name: str, knobs: Any, where: str) -> dict[str, Any]:
    """``knobs`` of baseline ``name`` typed by its :func:`knob_section`; an unknown, missing or
    mistyped knob is one ConfigError line naming ``<where>.<name>.<knob>``."""
    check_names({name: knobs}, where)
    return dataclasses.asdict(from_mapping(knob_section(BASELINES.get(name)), knobs, f"{where}.{name}"))


def make_baseline(name: str, ctx: FitContext, knobs: Mapping[str, Any]) -> Baseline:
    """Fit baseline ``name`` at ``knobs`` in ``ctx`` (see :meth:`FitContext.fit`)."""
    return ctx.fit(name, knobs)


def preflight_baseline(name: str, ctx: FitContext, knobs: Mapping[str, Any]) -> None:
    """Run baseline ``name``'s cheap pre-fit checks (unknown name or knob, memory budget, ...)."""
    cls = BASELINES.get(name)
    cls.preflight(ctx, typed_knobs(name, knobs, ctx.where))
