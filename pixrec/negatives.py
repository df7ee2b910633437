"""Negative sampling: per-epoch training negatives and the fixed candidates of the sampled protocol.

Samplers live in a registry; each draws item ids for many rows at once and rejection-resamples the
few collisions with a user's positives, vectorised over rows (no per-user loops).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.sparse as sp

from pixrec import schema
from pixrec.atomic import atomic_dir, write_json
from pixrec.config import ConfigError, section
from pixrec.data.dataset import SplitData
from pixrec.errors import InputError
from pixrec.numerics import environment
from pixrec.registry import Registry

MAX_ROUNDS = 200  # rejection rounds; a user who has seen nearly every item would exhaust this


@section
class NegativesConfig:
    """The ``negatives`` section of params.yaml."""

    sampler: str
    per_positive: int
    epochs: int
    seed: int
    eval_user_fraction: float
    eval_candidates: int

    def __post_init__(self) -> None:
        if self.per_positive < 1 or self.epochs < 1 or self.eval_candidates < 1:
            raise ConfigError("negatives: per_positive, epochs and eval_candidates must be >= 1")
        if not 0.0 < self.eval_user_fraction <= 1.0:
            raise ConfigError("negatives.eval_user_fraction must be in (0, 1]")


class Sampler:
    """Draws candidate item ids; subclasses set the distribution over the catalogue."""

    def __init__(self, data: SplitData) -> None:
        self.n_items = data.n_items

    def draw(self, rng: np.random.Generator, size: int | tuple[int, ...]) -> np.ndarray:
        raise NotImplementedError


SAMPLERS: Registry[type[Sampler]] = Registry("negative sampler")


@SAMPLERS.register("uniform")
class UniformSampler(Sampler):
    """Every item equally likely (cold items included)."""

    def draw(self, rng: np.random.Generator, size: int | tuple[int, ...]) -> np.ndarray:
        return rng.integers(0, self.n_items, size=size, dtype=np.int64)


@SAMPLERS.register("popularity")
class PopularitySampler(Sampler):
    """Items drawn in proportion to training popularity^0.75 (word2vec-style), add-one smoothed.

    Only training counts: a test interaction must never shape the negatives.
    """

    def __init__(self, data: SplitData, power: float = 0.75) -> None:
        super().__init__(data)
        weights = (data.train_popularity.astype(np.float64) + 1.0) ** power
        self.cdf = np.cumsum(weights / weights.sum())
        self.cdf[-1] = 1.0

    def draw(self, rng: np.random.Generator, size: int | tuple[int, ...]) -> np.ndarray:
        return np.searchsorted(self.cdf, rng.random(size=size), side="right").astype(np.int64)


def _pair_keys(matrix: sp.csr_matrix) -> np.ndarray:
    """Sorted int64 keys ``user * n_items + item`` of the nonzeros of ``matrix``."""
    m = matrix.tocsr(copy=True)
    m.sort_indices()
    keys = np.repeat(np.arange(m.shape[0], dtype=np.int64), np.diff(m.indptr)) * m.shape[1]
    return keys + m.indices


def _collides(keys: np.ndarray, n_items: int, users: np.ndarray, items: np.ndarray) -> np.ndarray:
    """Boolean (R,): whether (users[i], items[i]) is among ``keys`` (binary search)."""
    if len(keys) == 0:
        return np.zeros(len(users), dtype=bool)
    query = users.astype(np.int64) * n_items + items
    pos = np.minimum(np.searchsorted(keys, query), len(keys) - 1)
    return keys[pos] == query


def sample_excluding(
    sampler: Sampler,
    rng: np.random.Generator,
    users: np.ndarray,
    k: int,
    exclude: sp.csr_matrix,
    distinct: bool = False,
) -> np.ndarray:
    """Draw ``k`` items per row of ``users`` (R,) -> int32 (R, k), none in ``exclude[user]``.

    With ``distinct`` the k items of a row are also pairwise different (the sampled protocol's
    candidate set). Collisions are redrawn in vectorised rounds.
    """
    keys = _pair_keys(exclude)
    out = sampler.draw(rng, (len(users), k))
    flat_users = np.repeat(users, k)
    for _ in range(MAX_ROUNDS):
        bad = _collides(keys, exclude.shape[1], flat_users, out.ravel())
        if distinct:
            # a value is a duplicate if it equals its predecessor in the row's stable sort order
            order = np.argsort(out, axis=1, kind="stable")
            srt = np.take_along_axis(out, order, axis=1)
            dup_sorted = np.zeros_like(srt, dtype=bool)
            dup_sorted[:, 1:] = srt[:, 1:] == srt[:, :-1]
            dup = np.zeros_like(out, dtype=bool)
            np.put_along_axis(dup, order, dup_sorted, axis=1)
            bad |= dup.ravel()
        if not bad.any():
            return out.astype(np.int32)
        flat = out.ravel()
        flat[bad] = sampler.draw(rng, int(bad.sum()))
        out = flat.reshape(out.shape)
    stuck = np.unique(flat_users[bad])[:10]
    raise InputError(
        f"could not draw {k} negatives for user_idx {stuck.tolist()} after {MAX_ROUNDS} rounds: "
        f"they have interacted with (nearly) every item; lower negatives.per_positive "
        f"or eval_candidates"
    )


def training_negatives(data: SplitData, config: NegativesConfig) -> np.ndarray:
    """int32 (epochs, n_train, per_positive): negatives never among the user's training items.

    Epoch e uses its own child generator, so adding epochs never changes earlier ones.
    """
    sampler = SAMPLERS.get(config.sampler)(data)
    seeds = np.random.SeedSequence([config.seed, 1]).spawn(config.epochs)
    out = np.empty((config.epochs, len(data.train), config.per_positive), dtype=np.int32)
    for e, seed in enumerate(seeds):  # loop over epochs only; rows are vectorised
        out[e] = sample_excluding(sampler, np.random.default_rng(seed), data.train.users,
                                  config.per_positive, data.train_matrix)
    return out


# the keys each output depends on: its meta.json records these only, so that a change to a key of
# one output leaves the other's bytes (and the DVC stages that read only that one) alone
TRAIN_KEYS = ("sampler", "per_positive", "epochs", "seed")
CANDIDATE_KEYS = ("seed", "eval_user_fraction", "eval_candidates")


def write_negatives(data: SplitData, config: NegativesConfig, negatives_dir, candidates_dir) -> dict:
    """Training negatives into ``negatives_dir`` and the sampled protocol's candidate sets into
    ``candidates_dir``, each atomically; returns both metadata dicts ``{"negatives", "candidates"}``.

    Two outputs because two kinds of stage read them: training reads the negatives, evaluation
    the candidates (changing ``negatives.eval_candidates`` must not retrain a model).
    """
    train_negs = training_negatives(data, config)
    users, candidates = sampled_candidates(data, config)
    metas = {
        "negatives": {"config": {k: getattr(config, k) for k in TRAIN_KEYS},
                      "train_negatives_shape": list(train_negs.shape), "numerics": environment()},
        "candidates": {"config": {k: getattr(config, k) for k in CANDIDATE_KEYS},
                       "n_sampled_users": len(users), "n_candidates": int(candidates.shape[1]),
                       "numerics": environment()},
    }
    with atomic_dir(Path(negatives_dir)) as tmp:
        np.save(tmp / schema.TRAIN_NEG_FILE, train_negs)
        write_json(tmp / schema.NEG_META_FILE, metas["negatives"])
    with atomic_dir(Path(candidates_dir)) as tmp:
        np.save(tmp / schema.CAND_USERS_FILE, users)
        np.save(tmp / schema.CAND_FILE, candidates)
        write_json(tmp / schema.CAND_META_FILE, metas["candidates"])
    return metas


def sampled_candidates(data: SplitData, config: NegativesConfig) -> tuple[np.ndarray, np.ndarray]:
    """The poster's protocol: a seeded share of test users, 1 positive + n uniform negatives.

    Returns users int32 (n_eval,) and candidates int32 (n_eval, 1 + eval_candidates), column 0 the
    test item. Negatives avoid every interaction of the user in any split, and are uniform over the
    catalogue regardless of ``sampler`` (the protocol is fixed so all models see the same sets).
    """
    if config.eval_candidates > data.n_items - 1:  # a catalogue problem, not the users'
        raise InputError(f"negatives.eval_candidates = {config.eval_candidates} needs that many items "
                         f"besides the test item, but the catalogue has {data.n_items} items; set it to at "
                         f"most {data.n_items - 1} (fewer still where users have seen much of it)")
    rng = np.random.default_rng(np.random.SeedSequence([config.seed, 2]))
    test_users = data.test.users
    n_eval = max(1, round(config.eval_user_fraction * len(test_users)))
    pick = np.sort(rng.choice(len(test_users), size=n_eval, replace=False))
    users, positives = test_users[pick], data.test.items[pick]
    negs = sample_excluding(UniformSampler(data), rng, users, config.eval_candidates,
                            data.all_matrix, distinct=True)
    candidates = np.concatenate([positives[:, None], negs], axis=1).astype(np.int32)
    return users.astype(np.int32), candidates


def load_training_negatives(negatives_dir) -> np.ndarray:
    """The negative-sample stage's int32 (epochs, n_train, per_positive), memory-mapped."""
    path = Path(negatives_dir) / schema.TRAIN_NEG_FILE
    if not path.is_file():
        raise InputError(f"{path}: missing; run the negative-sample stage first")
    return np.load(path, mmap_mode="r")
