"""SASRec: causal masking, padding invariance, last-position scoring (its histories: the shared
builder, pixrec.histories, tested in test_two_tower.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from toy_split import make_split, random_split

from pixrec.baselines.base import FitContext, make_baseline
from pixrec.baselines.sasrec import SASRecNet
from pixrec.histories import Histories

KNOBS = {"dim": 16, "heads": 2, "layers": 2, "dropout": 0.1, "max_len": 6, "epochs": 3, "lr": 0.01,
         "batch_size": 8, "negatives": 0, "threads": 2}


@pytest.fixture(scope="module")
def toy():
    return random_split(40, 30, n_cold=4, seed=3)


def net(seed=0, max_len=8) -> SASRecNet:
    torch.manual_seed(seed)
    return SASRecNet(n_items=20, dim=16, heads=2, layers=2, max_len=max_len, dropout=0.0).eval()


def test_causal_mask_a_later_item_never_changes_an_earlier_position():
    m = net()
    seq = torch.tensor([[0, 0, 3, 7, 1, 9, 2, 5]])
    other = seq.clone()
    other[0, 5:] = torch.tensor([11, 12, 13])  # change positions 5..7
    with torch.no_grad():
        a, b = m(seq), m(other)
    torch.testing.assert_close(a[:, :5], b[:, :5], rtol=0, atol=0)  # bit for bit
    assert not torch.allclose(a[:, 5:], b[:, 5:])


def test_padding_invariance():
    """The same history with more left padding (or in a batch with longer histories) gives the same
    hidden states at its real positions: padding is never attended to, positions count from the end."""
    m = net()
    short = torch.tensor([[3, 7, 1]])
    padded = torch.tensor([[0, 0, 0, 0, 0, 3, 7, 1]])
    batch = torch.tensor([[0, 0, 0, 0, 0, 3, 7, 1], [4, 4, 6, 2, 9, 8, 1, 2]])
    with torch.no_grad():
        h_short, h_pad, h_batch = m(short), m(padded), m(batch)
    torch.testing.assert_close(h_pad[:, -3:], h_short, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(h_batch[:1, -3:], h_short, rtol=1e-5, atol=1e-6)


def test_scores_are_the_last_position_dot_every_item(toy):
    model = make_baseline("sasrec", FitContext(toy, None, 0), KNOBS)
    users = np.arange(toy.n_users)
    seqs = Histories.build(toy.train, toy.n_users, KNOBS["max_len"]).items + 1  # 0 = padding
    table = model.net.items.weight.detach()[1:]  # (I, D), row i = item_idx i
    for u in users[:10]:  # brute force: the net on the user's own history, last position, dot products
        with torch.no_grad():
            h = model.net(seqs[u : u + 1])[0, -1]
        ref = (table @ h).numpy()
        ref[toy.cold_items] = -np.inf
        np.testing.assert_allclose(model.score_all(np.array([u]))[0], ref, rtol=1e-4, atol=1e-5)
    assert np.isneginf(model.score_all(users)[:, toy.cold_items]).all()


@pytest.mark.slow  # trains SASRec three times (~15 s on 2 cores)
def test_training_is_seeded_and_learns_a_sequence():
    """Every user walks 0 -> 1 -> 2 -> ... around a ring of 10 items; after training, the next item
    of each user's history is on top, and the same seed gives the same scores bit for bit."""
    n_users, n_items = 30, 10
    rows = [(u, (u + t) % n_items) for u in range(n_users) for t in range(6)]
    data = make_split(n_users, n_items, rows)
    knobs = {**KNOBS, "epochs": 40, "dropout": 0.0, "batch_size": 16}
    a = make_baseline("sasrec", FitContext(data, None, 1), knobs).score_all(np.arange(n_users))
    b = make_baseline("sasrec", FitContext(data, None, 1), knobs).score_all(np.arange(n_users))
    np.testing.assert_array_equal(a, b)
    nxt = (np.arange(n_users) + 6) % n_items
    assert (a.argmax(axis=1) == nxt).mean() > 0.9
    sampled = make_baseline("sasrec", FitContext(data, None, 1), {**knobs, "negatives": 3})
    assert (sampled.score_all(np.arange(n_users)).argmax(axis=1) == nxt).mean() > 0.9
