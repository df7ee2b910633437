"""Baselines against brute-force dense references (loops allowed here) and hand-built toy splits."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from toy_split import make_split, random_split

import pixrec.baselines.catalog  # noqa: F401  (registers every baseline)
from pixrec.baselines.base import BASELINES, FitContext, knob_section, make_baseline, preflight_baseline
from pixrec.baselines.ease import MemoryBudgetError, ease_memory_bytes
from pixrec.baselines.neighbours import top_k_per_row
from pixrec.config import ConfigError
from pixrec.errors import InputError
from pixrec.evaluation.protocols import rank_full
from pixrec.features import Embeddings
from pixrec.registry import UnknownNameError

ID_ONLY = ["most_popular", "item_knn", "user_knn", "ease", "als", "bpr"]
KNOBS = {"random": {}, "most_popular": {}, "item_knn": {"k": 3}, "user_knn": {"k": 3},
         "ease": {"lam": 2.0, "max_gib": 1.0}, "content_knn": {"image_weight": 0.5},
         "als": {"factors": 8, "regularization": 0.1, "alpha": 1.0, "iterations": 5, "threads": 2},
         "bpr": {"factors": 8, "learning_rate": 0.05, "regularization": 0.01, "iterations": 20}}


def fit(name, data, embeddings=None, seed=0, **over):
    return make_baseline(name, FitContext(data, embeddings, seed), {**KNOBS[name], **over})


@pytest.fixture(scope="module")
def toy():
    """40 users, 30 items, the last 4 items only in valid/test (cold)."""
    return random_split(40, 30, n_cold=4, seed=3)


def dense_x(data) -> np.ndarray:
    return data.train_matrix.toarray().astype(np.float64)


def cosine(a: np.ndarray) -> np.ndarray:
    """Row-wise cosine of a dense binary matrix, zero rows -> 0."""
    norms = np.sqrt((a * a).sum(axis=1))
    inv = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
    return (a * inv[:, None]) @ (a * inv[:, None]).T


def ref_top_k(values: np.ndarray, k: int) -> tuple[list[int], bool]:
    """Indices of the k largest positive values (ties: lower index), and whether a near-tie straddles
    the cut (then another valid choice exists, and float rounding may pick it)."""
    pos = [j for j in range(len(values)) if values[j] > 1e-9]
    pos.sort(key=lambda j: (-round(values[j], 6), j))
    ambiguous = len(pos) > k and abs(values[pos[k - 1]] - values[pos[k]]) < 1e-6
    return pos[:k], ambiguous


def test_registry_names_and_unknown():
    assert set(BASELINES.names()) >= {"random", "most_popular", "item_knn", "user_knn", "ease",
                                      "content_knn"}
    with pytest.raises(UnknownNameError, match="valid names are"):
        make_baseline("slim", FitContext(make_split(2, 2, [(0, 0)]), None, 0), {})


def test_random_is_seeded_and_block_deterministic(toy):
    a, b = fit("random", toy), fit("random", toy)
    users = np.array([0, 5, 7])
    np.testing.assert_array_equal(a.score_all(users), b.score_all(users))  # same seed, same scores
    np.testing.assert_array_equal(a.score_all(users), a.score_all(users))  # no hidden state
    assert not np.array_equal(a.score_all(users)[:1], a.score_all(np.array([1]))), "per-user draws"
    other = fit("random", toy, seed=1)
    assert not np.array_equal(a.score_all(users), other.score_all(users))
    s = a.score_all(users)
    assert s.dtype == np.float32 and ((s >= 0) & (s < 1)).all()


def test_most_popular_uses_training_counts_only():
    # item 3 is the test item of five users: with test data it would be the most popular (6 > 3)
    train = [(0, 1), (1, 1), (2, 1), (0, 2), (1, 2), (5, 3), (4, 0)]
    test = [(u, 3) for u in range(5)]
    data = make_split(6, 5, train, test=test)
    mp = fit("most_popular", data)
    s = mp.score_all(np.array([0]))[0]
    np.testing.assert_array_equal(s[:4], [1, 3, 2, 1])  # training counts
    assert s[4] == -np.inf  # never trained: cold, unrankable
    ranks = rank_full(mp, np.arange(5), np.full(5, 3), sp.csr_matrix((6, 5))).ranks
    # item 3 ties item 0 (1 training interaction each) behind items 1 and 2: pessimistic rank 4
    np.testing.assert_array_equal(ranks, [4, 4, 4, 4, 4])
    assert np.all(ranks > 1), "test interactions leaked into popularity"


def test_top_k_per_row_ties_to_lower_column():
    m = sp.csr_matrix(np.array([[0.5, 0.75, 0.5, 0.5, 0.0], [0.0, 0.0, 0.0, 0.0, 0.0]], np.float32))
    kept = top_k_per_row(m, 2).toarray()
    np.testing.assert_array_equal(kept, [[0.5, 0.75, 0, 0, 0], [0, 0, 0, 0, 0]])


@pytest.mark.parametrize("k", [3, 100])
def test_item_knn_matches_dense_reference(toy, k):
    x = dense_x(toy)
    sim = cosine(x.T)
    np.fill_diagonal(sim, 0.0)
    model = fit("item_knn", toy, k=k)
    lib = model.sim.toarray()
    checked = 0
    for i in range(toy.n_items):  # each item's kept neighbours, by brute force
        keep, ambiguous = ref_top_k(sim[i], k)
        lib_row = np.flatnonzero(lib[i])
        if ambiguous:  # equal similarities at the cut: any choice is right, values must agree
            np.testing.assert_allclose(np.sort(lib[i][lib_row]), np.sort(sim[i][keep]), rtol=1e-5)
            continue
        assert sorted(lib_row.tolist()) == sorted(keep)
        np.testing.assert_allclose(lib[i][keep], sim[i][keep], rtol=1e-5)
        checked += 1
    assert checked > toy.n_items // 2
    users = np.arange(toy.n_users)
    expected = x @ lib  # scoring = user row @ pruned similarity
    expected[:, toy.cold_items] = -np.inf
    np.testing.assert_allclose(model.score_all(users), expected, rtol=1e-5, atol=1e-6)
    if k >= toy.n_items:  # nothing pruned: the whole reference
        ref = x @ sim
        ref[:, toy.cold_items] = -np.inf
        np.testing.assert_allclose(model.score_all(users), ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("k", [3, 100])
def test_user_knn_matches_dense_reference(toy, k):
    x = dense_x(toy)
    sim = cosine(x)
    np.fill_diagonal(sim, 0.0)
    model = fit("user_knn", toy, k=k)
    users = np.arange(toy.n_users)
    nb = model.neighbours(users).toarray()
    ref_w = np.zeros_like(sim)
    for u in users:  # brute-force neighbours per user
        keep, ambiguous = ref_top_k(sim[u], k)
        if ambiguous:
            got = np.flatnonzero(nb[u])
            np.testing.assert_allclose(np.sort(nb[u][got]), np.sort(sim[u][keep]), rtol=1e-5)
            ref_w[u] = nb[u]  # either tie choice is right; use the one made
        else:
            assert sorted(np.flatnonzero(nb[u]).tolist()) == sorted(keep)
            ref_w[u, keep] = sim[u, keep]
        assert nb[u, u] == 0, "a user is never their own neighbour"
    ref = ref_w @ x
    ref[:, toy.cold_items] = -np.inf
    np.testing.assert_allclose(model.score_all(users), ref, rtol=1e-5, atol=1e-6)


def test_ease_matches_closed_form(toy):
    lam = 2.0
    x = dense_x(toy)
    p = np.linalg.inv(x.T @ x + lam * np.eye(toy.n_items))
    b = np.eye(toy.n_items) - p / np.diag(p)[None, :]  # Steck 2019, eq. 8
    np.fill_diagonal(b, 0.0)
    ref = x @ b
    ref[:, toy.cold_items] = -np.inf
    model = fit("ease", toy, lam=lam)
    np.testing.assert_allclose(model.score_all(np.arange(toy.n_users)), ref, rtol=1e-4, atol=1e-6)


def test_ease_refuses_over_budget_with_advice(toy):
    budget = ease_memory_bytes(toy.n_items) / 2**30 / 2  # half of what it needs
    with pytest.raises(MemoryBudgetError) as err:
        fit("ease", toy, max_gib=budget)
    msg = str(err.value)
    assert "baselines.knobs.ease.max_gib" in msg and "GiB" in msg and "Remove 'ease'" in msg
    with pytest.raises(MemoryBudgetError):  # the evaluator's pre-fit check says the same
        preflight_baseline("ease", FitContext(toy, None, 0), {**KNOBS["ease"], "max_gib": budget})
    # PixelRec50K: ~51 GiB, far over the default budget
    assert ease_memory_bytes(82_865) / 2**30 == pytest.approx(51.16, abs=0.01)


def toy_embeddings(data, d=4, seed=0):
    rng = np.random.default_rng(seed)
    img = rng.standard_normal((data.n_items, d)).astype(np.float32)
    txt = rng.standard_normal((data.n_items, d + 2)).astype(np.float32)
    img_mask = np.ones(data.n_items, bool)
    txt_mask = np.ones(data.n_items, bool)
    img_mask[0] = False  # item 0: text only
    img_mask[1] = txt_mask[1] = False  # item 1: no content at all
    return {"image": Embeddings(img, img_mask, {}), "text": Embeddings(txt, txt_mask, {})}


def test_content_knn_matches_hand_computation(toy):
    emb = toy_embeddings(toy)
    model = fit("content_knn", toy, emb)
    img, im = emb["image"].vectors, emb["image"].mask
    txt, tm = emb["text"].vectors, emb["text"].mask
    unit = lambda v: v / np.linalg.norm(v)  # noqa: E731
    vecs = np.zeros((toy.n_items, img.shape[1] + txt.shape[1]))
    for i in range(toy.n_items):  # reference loop: per-side unit vectors, concatenated, unit again
        parts = [unit(img[i]) if im[i] else np.zeros(img.shape[1]),
                 unit(txt[i]) if tm[i] else np.zeros(txt.shape[1])]
        v = np.concatenate(parts)
        vecs[i] = unit(v) if (im[i] or tm[i]) else 0.0
    x = dense_x(toy)
    users = np.arange(toy.n_users)
    for u in users[:10]:
        profile = vecs[x[u] > 0].mean(axis=0)
        expected = vecs @ profile / np.linalg.norm(profile)
        expected[1] = -np.inf  # no usable content
        np.testing.assert_allclose(model.score_all(np.array([u]))[0], expected, rtol=1e-5, atol=1e-6)
    cand = np.array([[1, 0, 2, toy.n_items - 1]] * 3)
    np.testing.assert_allclose(model.score(users[:3], cand),
                               np.take_along_axis(model.score_all(users[:3]), cand, axis=1), rtol=1e-6)


@pytest.mark.parametrize("n", [1, 5, 40])
def test_content_knn_faiss_retrieval_equals_top_k_of_its_scores(toy, n):
    """Two-stage proposals from the faiss index = the generic score_all + mask + top-k (as sets)."""
    from pixrec.scoring import top_unseen

    model = fit("content_knn", toy, toy_embeddings(toy))
    users = np.arange(toy.n_users)
    got = model.retrieve(users, n, toy.seen_matrix)
    ref = top_unseen(model, users, n, toy.seen_matrix)
    as_set = lambda rows_items: set(zip(*(a.tolist() for a in rows_items), strict=True))  # noqa: E731
    assert as_set(got) == as_set(ref)
    seen = toy.seen_matrix
    assert not np.asarray(seen[users[got[0]], got[1]]).any()  # nothing already seen is proposed
    assert 1 not in got[1]  # the item without content is never proposed
    assert np.bincount(got[0], minlength=len(users)).max() <= n


def test_content_knn_needs_embeddings(toy):
    with pytest.raises(InputError, match="needs item embeddings"):
        fit("content_knn", toy, None)


def test_content_knn_weight_on_a_side_without_content_ranks_nothing(toy):
    """A text-only dataset (every cover masked): image_weight 1 leaves nothing to rank with, so every
    item is unrankable (tuning scores it 0 and chooses another weight), not an error."""
    emb = toy_embeddings(toy)
    emb["image"] = Embeddings(emb["image"].vectors, np.zeros(toy.n_items, bool), {})
    assert np.isneginf(fit("content_knn", toy, emb, image_weight=1.0).score_all(np.arange(5))).all()
    assert np.isfinite(fit("content_knn", toy, emb, image_weight=0.0).score_all(np.arange(5))[:, 2:]).all()


@pytest.mark.parametrize("w", [0.0, 0.3, 1.0])
def test_content_knn_image_weight_weighs_the_sides_cosines(toy, w):
    """With every item holding both sides, score = cosine of the profile with the item, where the
    item vector is [sqrt(w)·unit(img), sqrt(1 − w)·unit(txt)] (unit norm already)."""
    rng = np.random.default_rng(4)
    img = rng.standard_normal((toy.n_items, 3)).astype(np.float32)
    txt = rng.standard_normal((toy.n_items, 5)).astype(np.float32)
    ok = np.ones(toy.n_items, bool)
    emb = {"image": Embeddings(img, ok, {}), "text": Embeddings(txt, ok, {})}
    model = fit("content_knn", toy, emb, image_weight=w)
    unit = lambda v: v / np.linalg.norm(v, axis=1, keepdims=True)  # noqa: E731
    vecs = np.concatenate([np.sqrt(w) * unit(img), np.sqrt(1 - w) * unit(txt)], axis=1)
    x = dense_x(toy)
    profile = x @ vecs
    expected = unit(profile) @ vecs.T
    np.testing.assert_allclose(model.score_all(np.arange(toy.n_users)), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", ID_ONLY)
def test_cold_targets_rank_behind_every_rankable_item_for_id_only(toy, name):
    model = fit(name, toy)
    cold = toy.cold_items[toy.test.items]
    users, targets = toy.test.users[cold], toy.test.items[cold]
    assert len(users) > 3
    s = model.score_all(users)
    assert np.isneginf(s[:, toy.cold_items]).all()
    ranks = rank_full(model, users, targets, toy.seen_matrix).ranks
    n_unmasked = toy.n_items - np.diff(toy.seen_matrix[users].indptr)
    np.testing.assert_array_equal(ranks, n_unmasked)  # last: every unmasked item counts against it
    assert ranks.min() > 20


def test_content_knn_reaches_cold_items():
    # user 0 trained on items 0, 1 (content along e0); cold item 3 has the same content
    data = make_split(2, 5, [(0, 0), (0, 1), (1, 2), (1, 4)], test=[(0, 3)])
    vec = np.array([[1, 0], [1, 0.1], [0, 1], [1, 0.05], [0.2, 1]], np.float32)
    model = fit("content_knn", data, {"text": Embeddings(vec, np.ones(5, bool), {})})
    assert data.cold_items[3]
    rank = rank_full(model, np.array([0]), np.array([3]), data.seen_matrix).ranks
    assert rank.tolist() == [1]


def test_knobs_are_checked_against_the_signature(toy):
    assert fit("item_knn", toy, k=1).sim.getnnz(axis=1).max() <= 1
    with pytest.raises(ConfigError, match=r"baselines\.knobs\.item_knn\.kk: unknown key; valid keys are \["):
        make_baseline("item_knn", FitContext(toy, None, 0), {"k": 1, "kk": 5})
    with pytest.raises(ConfigError, match=r"^baselines\.knobs\.ease\.max_gib is missing$"):
        make_baseline("ease", FitContext(toy, None, 0), {"lam": 1.0})
    with pytest.raises(ConfigError, match=r"eval\.two_stage_retrievers\.random\.k: unknown key"):
        make_baseline("random", FitContext(toy, None, 0, where="eval.two_stage_retrievers"), {"k": 1})
    with pytest.raises(ConfigError, match=r"baselines\.knobs\.item_knn\.k: expected an integer, got 2\.5"):
        make_baseline("item_knn", FitContext(toy, None, 0), {"k": 2.5})
    assert knob_section(BASELINES.get("ease"))(lam="3e-4", max_gib=1).lam == 3e-4  # typed, YAML 1.1 too


# --- learned factors (implicit) ---------------------------------------------------------------------


@pytest.mark.parametrize("name", ["als", "bpr"])
def test_factor_scores_are_the_dot_product_of_their_own_factors(toy, name):
    model = fit(name, toy)
    users = np.arange(toy.n_users)
    ref = np.empty((toy.n_users, toy.n_items))
    for u in users:  # brute force, one dot product at a time
        for i in range(toy.n_items):
            ref[u, i] = float(np.dot(model.user_factors[u].astype(np.float64), model.item_factors[i]))
    ref[:, toy.cold_items] = -np.inf
    np.testing.assert_allclose(model.score_all(users), ref, rtol=1e-4, atol=1e-5)
    assert model.user_factors.shape[0] == toy.n_users and model.item_factors.shape[0] == toy.n_items


@pytest.mark.parametrize("name", ["als", "bpr"])
def test_factor_models_are_seeded(toy, name):
    users = np.arange(toy.n_users)
    a, b = fit(name, toy, seed=5).score_all(users), fit(name, toy, seed=5).score_all(users)
    np.testing.assert_array_equal(a, b)  # bit for bit (ALS on 2 threads; BPR on its one)
    assert not np.array_equal(a, fit(name, toy, seed=6).score_all(users))


def test_als_learns_the_co_occurrence():
    """Two disjoint user groups: ALS ranks a user's own group's unseen items above the other's."""
    train = [(u, i) for u in range(20) for i in range(6) if (u + i) % 3] + \
            [(u, i) for u in range(20, 40) for i in range(6, 12) if (u + i) % 3]
    data = make_split(40, 12, train)
    s = fit("als", data, factors=4, iterations=15).score_all(np.arange(40))
    x = data.train_matrix.toarray() > 0
    own = np.where(~x[:20, :6], s[:20, :6], np.nan)
    other = s[:20, 6:]
    assert np.nanmin(own) > other.max()


# --- hybrid -------------------------------------------------------------------------------------------


def test_zscore_rows_by_hand():
    from pixrec.baselines.hybrid import zscore_rows

    s = np.array([[1.0, 3.0, -np.inf, 5.0], [-np.inf] * 4, [2.0, 2.0, 2.0, -np.inf]], np.float32)
    z, ok = zscore_rows(s)
    # row 0: mean 3, population std sqrt(8/3); the -inf item gets the row's lowest z
    sd = np.sqrt(8 / 3)
    np.testing.assert_allclose(z[0], [-2 / sd, 0, -2 / sd, 2 / sd], rtol=1e-6)
    np.testing.assert_array_equal(z[1], 0.0)  # nothing rankable: defined, and flagged
    np.testing.assert_array_equal(z[2], 0.0)  # constant row: std 0 -> z 0
    np.testing.assert_array_equal(ok, np.isfinite(s))


def test_hybrid_blends_per_user_z_scores_with_a_cold_bonus(toy):
    from pixrec.baselines.hybrid import zscore_rows

    emb = toy_embeddings(toy)
    ctx = FitContext(toy, emb, 0, chosen={"ease": KNOBS["ease"], "content_knn": KNOBS["content_knn"]})
    users = np.arange(toy.n_users)
    cf, content = ctx.component("ease").score_all(users), ctx.component("content_knn").score_all(users)
    w, bonus = 0.3, 0.7
    hybrid = make_baseline("hybrid", ctx, {"cf": "ease", "weight": w, "cold_bonus": bonus})
    assert hybrid.cf is ctx.component("ease")  # the component, fitted once and shared
    got = hybrid.score_all(users)
    z_cf, z_ct = zscore_rows(cf)[0], zscore_rows(content)[0]
    for u in users[:8]:  # by hand, item by item
        for i in range(toy.n_items):
            if not (np.isfinite(cf[u, i]) or np.isfinite(content[u, i])):
                assert got[u, i] == -np.inf  # item 1 is warm but has no content; cold ones do have it
                continue
            lo_cf = z_cf[u][np.isfinite(cf[u])].min()
            part_cf = z_cf[u, i] if np.isfinite(cf[u, i]) else lo_cf  # cold: the user's lowest CF z
            want = (1 - w) * part_cf + w * z_ct[u, i] + bonus * toy.cold_items[i]
            assert got[u, i] == pytest.approx(want, rel=1e-5, abs=1e-5)
    assert np.isfinite(got[:, toy.cold_items]).all(), "cold items are ranked through their content"


def test_hybrid_needs_its_components_chosen_first(toy):
    ctx = FitContext(toy, toy_embeddings(toy), 0, chosen={"content_knn": KNOBS["content_knn"]})
    with pytest.raises(InputError, match="before the baselines using it"):
        make_baseline("hybrid", ctx, {"cf": "ease", "weight": 0.5, "cold_bonus": 0.0})
