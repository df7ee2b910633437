"""Negative sampling never hands a model one of the user's own positives."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from real_params import real_config

from pixrec.data.dataset import SplitData
from pixrec.errors import InputError
from pixrec.negatives import (
    SAMPLERS,
    NegativesConfig,
    UniformSampler,
    sample_excluding,
    sampled_candidates,
    training_negatives,
)
from pixrec.registry import UnknownNameError


@pytest.fixture(scope="module")
def data(tiny_split) -> SplitData:
    return SplitData.load(tiny_split)


@pytest.mark.parametrize("sampler", ["uniform", "popularity"])
def test_training_negatives_avoid_training_positives(data, sampler):
    config = real_config(NegativesConfig, sampler=sampler, per_positive=5, epochs=3, seed=1)
    negs = training_negatives(data, config)
    assert negs.shape == (3, len(data.train), 5) and negs.dtype == np.int32
    assert negs.min() >= 0 and negs.max() < data.n_items
    users = np.broadcast_to(data.train.users[None, :, None], negs.shape).ravel()
    hits = np.asarray(data.train_matrix[users, negs.ravel()]).ravel()
    assert hits.sum() == 0
    # epochs differ from each other, and the same seed gives the same arrays
    assert not np.array_equal(negs[0], negs[1])
    np.testing.assert_array_equal(negs, training_negatives(data, config))


def test_popularity_sampler_follows_training_counts(data):
    config = real_config(NegativesConfig, sampler="popularity", per_positive=20, epochs=1,
                         seed=2)
    drawn = np.bincount(training_negatives(data, config).ravel(), minlength=data.n_items)
    pop = data.train_popularity
    top, bottom = np.argsort(pop)[-20:], np.flatnonzero(pop == 0)
    assert drawn[top].mean() > 3 * drawn[bottom].mean()


def test_sampled_candidates_avoid_every_interaction(data):
    config = real_config(NegativesConfig, eval_user_fraction=0.3, eval_candidates=20, seed=3)
    users, cands = sampled_candidates(data, config)
    n_test = len(data.test)
    assert len(users) == round(0.3 * n_test) and cands.shape == (len(users), 21)
    test_item = dict(zip(data.test.users.tolist(), data.test.items.tolist(), strict=True))
    assert cands[:, 0].tolist() == [test_item[u] for u in users.tolist()]
    negs = cands[:, 1:]
    hits = np.asarray(data.all_matrix[np.repeat(users, 20), negs.ravel()]).ravel()
    assert hits.sum() == 0  # no train, valid or test item of that user among the negatives
    assert all(len(set(row)) == 21 for row in cands.tolist())  # distinct candidates


def test_exhausted_user_gets_a_clear_error():
    exclude = sp.csr_matrix(np.array([[1, 1, 1, 0], [0, 0, 0, 0]], dtype=np.float32))

    class Tiny:
        n_items = 4

    with pytest.raises(InputError, match=r"user_idx \[0\]"):
        sample_excluding(UniformSampler(Tiny), np.random.default_rng(0), np.array([0, 1]), 2,
                         exclude, distinct=True)


def test_unknown_sampler_lists_valid_names():
    with pytest.raises(UnknownNameError, match="popularity"):
        SAMPLERS.get("hard")
