"""The flagship two-tower model on the real tiny split: cold items scored from content only, exact
ranking equal to a brute-force scoring written independently, a causal user tower, histories in
time order with ties in file order, freshness buckets by hand, the cold offset chosen on validation
only, and training that learns, bit for bit the same twice."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from real_params import real_section

from pixrec.config import from_mapping
from pixrec.data.dataset import Interactions, SplitData
from pixrec.evaluation.metrics import ndcg
from pixrec.evaluation.protocols import rank_full
from pixrec.features import Embeddings
from pixrec.histories import Histories
from pixrec.models.cold_lift import Yardstick, choose_cold_offset, lift_curve, pick_offset
from pixrec.models.two_tower import TwoTowerRecommender, TwoTowerSection, TwoTowerTask
from pixrec.models.two_tower_net import Freshness, TwoTower, first_seen
from pixrec.serve.placing import ContentPlacer
from pixrec.serve.topk import top_k_unseen


def section(**overrides) -> TwoTowerSection:
    """The real params.yaml section, ``model.x`` / ``train.x`` / ``select.x`` overridden."""
    raw = real_section("two_tower")
    for key, value in overrides.items():
        part, field = key.split(".")
        raw[part] = {**raw[part], field: value}
    return from_mapping(TwoTowerSection, raw, "two_tower")


@pytest.fixture(scope="module")
def setup(tiny_split):
    data = SplitData.load(tiny_split)
    rng = np.random.default_rng(0)
    emb = {side: Embeddings(rng.normal(size=(data.n_items, d)).astype(np.float32),
                            np.ones(data.n_items, dtype=bool), {})
           for side, d in (("image", 8), ("text", 12))}
    return data, emb


# the best tuned baselines' validation NDCG@10 (full, cold): what the cold lift is chosen against
YARDSTICK = Yardstick(0.02, 0.01, "user_knn", "content_knn")


def untrained(setup, **overrides):
    """A randomly initialised model with its fitted freshness, features and histories."""
    data, emb = setup
    task = TwoTowerTask(data, emb, section(**{"model.dim": 16, **overrides}), torch.device("cpu"), YARDSTICK)
    hist = task.histories.trimmed(task.config.max_history)
    return task.module.eval(), task.feats, hist, data


def test_a_cold_item_is_scored_from_its_content_only(setup):
    model, feats, hist, data = untrained(setup)
    cold = int(np.flatnonzero(data.cold_items)[0])
    warm = int(np.flatnonzero(~data.cold_items)[0])
    users = np.arange(20)
    before = TwoTowerRecommender(model, feats, hist, 0.0).score_all(users)
    with torch.no_grad():
        noise = torch.randn(2, model.config.dim, generator=torch.Generator().manual_seed(0))
        model.item_emb.weight[[cold, warm]] += noise  # the cold item's ID row was never trained
    after = TwoTowerRecommender(model, feats, hist, 0.0).score_all(users)
    np.testing.assert_array_equal(after[:, cold], before[:, cold])
    assert not np.allclose(after[:, warm], before[:, warm])
    shift = torch.randn(feats.text.shape[1], generator=torch.Generator().manual_seed(1))
    feats.text[cold] += shift  # its content does move it
    moved = TwoTowerRecommender(model, feats, hist, 0.0).score_all(users)
    feats.text[cold] -= shift
    assert not np.allclose(moved[:, cold], after[:, cold])


def _state(model: TwoTower, items: torch.Tensor, data: SplitData, user: int) -> tuple[torch.Tensor, int]:
    """The user tower's last state (D,) over the user's training items, no padding, and the time of
    the last one."""
    rows = np.arange(len(data.train))
    mine = rows[data.train.users == user]
    mine = mine[np.lexsort((mine, data.train.timestamps[mine]))][-model.config.max_history:]
    seq = torch.from_numpy(data.train.items[mine].astype(np.int64))[None]
    return model.user_states(seq, items[seq])[0, -1], int(data.train.timestamps[mine[-1]])


def _brute_force(model: TwoTower, feats, data: SplitData, users: np.ndarray) -> np.ndarray:
    """Scores written from the definition, one user at a time, histories without padding."""
    n = data.n_items
    items = model.item_vectors(feats, torch.arange(n), torch.ones(n, dtype=torch.bool))
    out = np.empty((len(users), n), dtype=np.float32)
    for k, u in enumerate(users):  # test oracle: a per-user loop on purpose
        h, when = _state(model, items, data, u)
        score = (items @ h) * model.config.dim ** -0.5
        fresh = model.freshness
        for i in range(n):
            first = int(fresh.first_seen[i])
            bucket = 0 if first > when else 1 + int((fresh.edges < when - first).sum())
            score[i] += fresh.bias[bucket]
        out[k] = score.numpy()
    return out


def test_freshness_grid_equals_the_bucket_definition():
    """The sorted-threshold grid (training and scoring) gives every (query time, item) pair the bucket
    that :meth:`Freshness.bucket` defines: ties in time, repeated edges, items never seen, and a
    query exactly at an item's first time or one second past an edge."""
    g = torch.Generator().manual_seed(0)
    never = torch.iinfo(torch.int64).max
    for trial in range(20):
        first = torch.randint(0, 1000, (300,), generator=g)
        first[torch.rand(300, generator=g) < 0.1] = never
        fresh = Freshness(first, n_buckets=16)
        edges = torch.sort(torch.randint(0, 400, (15,), generator=g)).values
        edges[3:6] = edges[3]
        fresh.edges.copy_(edges)
        items = torch.randint(0, 300, (411,), generator=g)
        when = torch.randint(0, 1500, (257,), generator=g)
        when[::7] = when[0]
        seen = first[items][first[items] != never][0]
        when[1], when[2] = seen, seen + edges[0] + 1  # on a threshold
        expected = fresh.bucket(when[:, None], items[None, :])
        assert torch.equal(fresh.grid(when, first[items]).long(), expected), trial
        bias = fresh(when, items).detach().numpy()
        np.testing.assert_array_equal(bias, fresh.bias[expected].detach().numpy())


def test_exact_ranking_equals_a_brute_force_scoring(setup):
    model, feats, hist, data = untrained(setup)
    users = data.test.users[:12]
    rec = TwoTowerRecommender(model, feats, hist, 0.0)
    with torch.no_grad():
        model.freshness.bias.copy_(torch.linspace(-1, 1, len(model.freshness.bias)))
        brute = _brute_force(model, feats, data, users)
    fast = rec.score_all(users)
    np.testing.assert_allclose(fast, brute, rtol=0, atol=2e-5)
    ranks = rank_full(rec, users, data.test.items[:12], data.seen_matrix).ranks
    seen = data.seen_matrix[users].toarray() > 0
    target = brute[np.arange(12), data.test.items[:12]][:, None]
    expected = ((brute >= target) & ~seen).sum(axis=1)  # pessimistic ties; the target counts itself
    np.testing.assert_array_equal(ranks, expected)


def test_the_user_tower_is_causal_and_ignores_padding(setup):
    model, feats, _, data = untrained(setup)
    n = data.n_items
    items = model.item_vectors(feats, torch.arange(n), torch.ones(n, dtype=torch.bool))
    seq = torch.tensor([[-1, -1, 3, 7, 11, 2]])
    changed = seq.clone()
    changed[0, 4] = 9
    with torch.no_grad():
        a = model.user_states(seq, items[seq.clamp(min=0)])
        b = model.user_states(changed, items[changed.clamp(min=0)])
        unpadded = model.user_states(seq[:, 2:], items[seq[:, 2:]])
    torch.testing.assert_close(a[0, :4], b[0, :4], rtol=0, atol=0)  # positions before the change
    assert not torch.allclose(a[0, 4:], b[0, 4:])
    torch.testing.assert_close(a[0, -1], unpadded[0, -1], rtol=0, atol=1e-6)


def test_histories_are_right_aligned_in_time_order_with_ties_in_file_order():
    train = Interactions(users=np.array([1, 0, 1, 1, 0], dtype=np.int32),
                         items=np.array([5, 2, 6, 4, 3], dtype=np.int32),
                         timestamps=np.array([30, 10, 20, 20, 5], dtype=np.int64))
    h = Histories.build(train, n_users=3, length=3)
    # user 1: items 6 and 4 share t=20 and keep their file order (6 before 4), then 5 at t=30
    np.testing.assert_array_equal(h.items.numpy(), [[-1, 3, 2], [6, 4, 5], [-1, -1, -1]])
    np.testing.assert_array_equal(h.times.numpy(), [[0, 5, 10], [20, 20, 30], [0, 0, 0]])
    np.testing.assert_array_equal(Histories.build(train, 3, 2).items.numpy(), [[3, 2], [4, 5], [-1, -1]])


def test_freshness_buckets_by_hand():
    fresh = Freshness(torch.tensor([10, 20, torch.iinfo(torch.int64).max]), n_buckets=3)
    fresh.edges.copy_(torch.tensor([5, 15]))
    # at t=20: item 0 is 10 s old (between the edges: bucket 2), item 1 0 s (bucket 1), item 2 unseen
    np.testing.assert_array_equal(fresh.bucket(torch.tensor(20), torch.arange(3)).numpy(), [2, 1, 0])
    # at t=9 item 0 was not seen yet; at t=100 it is 90 s old (past the last edge: bucket 3)
    np.testing.assert_array_equal(fresh.bucket(torch.tensor([9, 100])[:, None], torch.tensor([[0]])).numpy(),
                                  [[0], [3]])


def test_first_seen_is_the_earliest_training_timestamp():
    got = first_seen(np.array([2, 0, 2]), np.array([50, 7, 40]), n_items=4)
    assert got.tolist() == [7, torch.iinfo(torch.int64).max, 40, torch.iinfo(torch.int64).max]


def test_the_cold_lift_is_the_largest_smaller_lead_over_the_yardstick():
    """A worked example: leads (full, cold) over the yardstick (0.20, 0.10) are 0.21/0.20 = 1.05 and
    0.05/0.10 = 0.5 at lift 0; 1.025 and 1.5 at 0.5; 0.9 and 2.5 at 1.0. The smaller leads are 0.5,
    1.025 and 0.9: lift 0.5, which neither the best full (0) nor the best cold (1.0) would pick."""
    curve = {"0.0": {"full": 0.21, "cold": 0.05}, "0.5": {"full": 0.205, "cold": 0.15},
             "1.0": {"full": 0.18, "cold": 0.25}}
    yard = Yardstick(0.20, 0.10, "ease", "content_knn")
    assert pick_offset(curve, yard, has_cold=True) == 0.5
    # no cold validation user, or no baseline that finds a cold item: full ranking alone decides
    assert pick_offset(curve, yard, has_cold=False) == 0.0
    assert pick_offset(curve, Yardstick(0.20, 0.0, "ease", "random"), has_cold=True) == 0.0
    # a baseline that leads full ranking however far cold items are lifted: the best cold lead wins
    assert pick_offset(curve, Yardstick(0.5, 0.10, "ease", "content_knn"), has_cold=True) == 0.0
    assert pick_offset(curve, Yardstick(0.1, 0.5, "ease", "content_knn"), has_cold=True) == 1.0


def test_every_lift_from_one_scoring_pass_equals_ranking_with_that_lift(setup):
    """The one-pass curve's NDCG@10s are those of rank_full run afresh with each lift (the ranks the
    evaluator would compute), on validation with training items masked."""
    model, feats, hist, data = untrained(setup)
    with torch.no_grad():
        model.freshness.bias.copy_(torch.linspace(-1, 1, len(model.freshness.bias)))
    offsets = [0.0, 0.5, 5.0]
    curve = lift_curve(TwoTowerRecommender(model, feats, hist, 0.0), data, offsets, batch_users=37)
    users, targets = data.valid.users, data.valid.items
    cold = data.cold_items[targets]
    assert cold.any() and not cold.all()
    for offset in offsets:
        ranks = rank_full(TwoTowerRecommender(model, feats, hist, offset), users, targets,
                          data.train_matrix).ranks
        gain = ndcg(ranks, 10)
        assert curve[str(offset)] == {"full": float(gain.mean()), "cold": float(gain[cold].mean())}
    assert curve["0.0"]["cold"] != curve["5.0"]["cold"], "the lift must move cold items for this to mean much"


@pytest.mark.slow
def test_the_cold_offset_is_chosen_on_validation_only(setup):
    model, feats, hist, data = untrained(setup)
    offsets = section().select.cold_offset
    offset, curve = choose_cold_offset(TwoTowerRecommender(model, feats, hist, 0.0), data, offsets, YARDSTICK)
    assert offset == pick_offset(curve, YARDSTICK, has_cold=True)
    # the choice does not move when the test interactions are shuffled or gone
    rng = np.random.default_rng(1)
    shuffled = Interactions(data.test.users, rng.permutation(data.test.items), data.test.timestamps)
    empty = Interactions(*(np.zeros(0, dtype=a.dtype) for a in dataclasses.astuple(data.test)))
    for test in (shuffled, empty):
        other = dataclasses.replace(data, test=test)
        again = choose_cold_offset(TwoTowerRecommender(model, feats, hist, 0.0), other, offsets, YARDSTICK)
        assert again == (offset, curve)


def test_new_items_are_scored_as_never_trained_catalogue_items(setup):
    """A cold catalogue item resubmitted as a new item (same content) gets its vector and its scores;
    every user's top-k over catalogue + new items is the brute-force one (freshness and cold offset on)."""
    model, feats, hist, data = untrained(setup)
    with torch.no_grad():
        model.freshness.bias.copy_(torch.linspace(-1, 1, len(model.freshness.bias)))
    rec = TwoTowerRecommender(model, feats, hist, 0.75)
    assert isinstance(rec, ContentPlacer)  # what pixrec similar / score-new take
    n, users = data.n_items, data.test.users[:12]
    cold = torch.from_numpy(np.flatnonzero(data.cold_items)[:3])
    rows = {f.name: getattr(feats, f.name)[cold] for f in dataclasses.fields(feats)
            if f.name != "known" and not f.name.startswith("user_")}
    same = dataclasses.replace(feats, **rows, known=torch.zeros(len(cold), dtype=torch.bool))
    again = rec.new_item_vectors(same)
    torch.testing.assert_close(again, rec.items[cold], rtol=0, atol=1e-5)
    warm = torch.from_numpy(np.flatnonzero(~data.cold_items)[:5])
    vectors = torch.cat([again, 1.5 * rec.items[warm]])  # (8, D): 3 resubmitted, 5 content-placed
    both = rec.with_new_items(vectors)
    scores = both.score_all(users)
    assert scores.shape == (12, n + 8) and both.n_items == n + 8
    np.testing.assert_allclose(scores[:, :n], rec.score_all(users), rtol=0, atol=1e-5)  # catalogue unmoved
    np.testing.assert_allclose(scores[:, n:n + 3], scores[:, cold.numpy()], rtol=0, atol=1e-5)

    with torch.no_grad():  # brute force: the catalogue from the definition, new items as cold ones
        brute = _brute_force(model, feats, data, users)
        h = torch.stack([_state(model, rec.items, data, u)[0] for u in users])
        new = (h @ vectors.T * model.config.dim ** -0.5 + model.freshness.bias[0]).numpy()
    spread = brute.std(axis=1, ddof=1, keepdims=True)  # the catalogue's, as torch.std
    brute = np.concatenate([brute + 0.75 * spread * data.cold_items, new + 0.75 * spread], axis=1)
    seen = sp.hstack([data.seen_matrix, sp.csr_matrix((data.n_users, 8))], format="csr")
    top = top_k_unseen(both, users, 10, seen, batch_users=5)
    masked = np.where(seen[users].toarray() > 0, -np.inf, brute)
    best = -np.sort(-masked, axis=1)[:, :10]
    np.testing.assert_allclose(np.take_along_axis(masked, top.items, axis=1), best, rtol=0, atol=5e-5)
    assert (top.items >= n).any()  # new items do enter lists

