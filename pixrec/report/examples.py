"""Real recommendations with covers: example users, the best case and the worst distractor.

Scores come from the trained fusion model through the scoring interface (``score_all``), with the
user's training and validation items masked exactly as full-ranking evaluation masks them. Users are
a seeded sample of test users; scoring runs in blocks so memory stays at ``block × n_items``.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl
from PIL import Image, ImageDraw, ImageOps

from pixrec import schema as S
from pixrec.data.dataset import SplitData
from pixrec.scoring import Recommender


@dataclass(frozen=True)
class Thumb:
    """One item's cover as a small JPEG; ``note`` says why a placeholder stands in for it."""

    item_idx: int
    item_id: str
    title: str
    tag: str
    jpeg: bytes
    note: str | None = None


class Thumbnails:
    """Cover thumbnails by item_idx, decoded once each; a missing or corrupt cover becomes a
    labelled placeholder (never a broken <img>)."""

    def __init__(self, raw_dir: Path, items: pl.DataFrame, size: int) -> None:
        self.raw_dir = Path(raw_dir)
        self.size = size
        cols = items.select(S.ITEM_ID, S.TITLE, S.TAG, S.COVER_PATH)
        self.item_id = cols[S.ITEM_ID].to_list()
        self.title = cols[S.TITLE].to_list()
        self.tag = cols[S.TAG].to_list()
        self.cover = cols[S.COVER_PATH].to_list()
        self._cache: dict[int, Thumb] = {}

    def __call__(self, item_idx: int) -> Thumb:
        item_idx = int(item_idx)
        if item_idx not in self._cache:
            jpeg, note = self._render(self.cover[item_idx])
            self._cache[item_idx] = Thumb(
                item_idx, str(self.item_id[item_idx]), self.title[item_idx] or "", self.tag[item_idx] or "",
                jpeg, note,
            )
        return self._cache[item_idx]

    @property
    def used(self) -> list[Thumb]:
        return [self._cache[k] for k in sorted(self._cache)]

    def _render(self, cover: str | None) -> tuple[bytes, str | None]:
        if cover is None:
            return self._placeholder("no cover"), "no cover"
        try:
            with Image.open(self.raw_dir / cover) as img:
                img = ImageOps.contain(img.convert("RGB"), (self.size, self.size))
        except (OSError, ValueError, Image.DecompressionBombError):
            return self._placeholder("unreadable cover"), "unreadable cover"
        return _jpeg(img), None

    def _placeholder(self, text: str) -> bytes:
        img = Image.new("RGB", (self.size, self.size), (225, 225, 225))
        ImageDraw.Draw(img).text((6, self.size // 2 - 6), text, fill=(90, 90, 90))
        return _jpeg(img)


def _jpeg(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=82)
    return buf.getvalue()


@dataclass
class Ranked:
    """Full-ranking results for a set of users: ``top`` (U, k) item_idx best first, scores alike,
    and the held-out test item's score and 1-based rank (1 + items scored strictly higher)."""

    users: np.ndarray  # (U,)
    top: np.ndarray  # (U, k) int64
    top_scores: np.ndarray  # (U, k) float32
    test_item: np.ndarray  # (U,) int64
    test_score: np.ndarray  # (U,) float32
    test_rank: np.ndarray  # (U,) int64


def test_items_of(data: SplitData) -> np.ndarray:
    """(n_users,) held-out test item per user, -1 for users without one."""
    out = np.full(data.n_users, -1, dtype=np.int64)
    out[data.test.users] = data.test.items
    return out


def rank_users(rec: Recommender, data: SplitData, users: np.ndarray, k: int, block: int = 64) -> Ranked:
    """Score ``users`` (U,) against the catalogue, train+valid masked; keep the top ``k`` and the
    test item's rank."""
    users = np.asarray(users, dtype=np.int64)
    test = test_items_of(data)[users]
    if (test < 0).any():
        raise ValueError(f"user_idx {users[test < 0][:5].tolist()} have no test interaction")
    k = min(k, data.n_items)
    seen = data.seen_matrix
    tops, top_scores, t_scores, t_ranks = [], [], [], []
    for s in range(0, len(users), block):
        u = users[s : s + block]
        scores = np.asarray(rec.score_all(u), dtype=np.float32)  # (b, n_items)
        mask = seen[u].tocoo()
        scores[mask.row, mask.col] = -np.inf
        order = np.argsort(-scores, axis=1, kind="stable")[:, :k]  # ties: lower item_idx first
        tops.append(order)
        top_scores.append(np.take_along_axis(scores, order, axis=1))
        ts = scores[np.arange(len(u)), test[s : s + block]]
        t_scores.append(ts)
        t_ranks.append(1 + (scores > ts[:, None]).sum(axis=1))
    return Ranked(users, np.concatenate(tops).astype(np.int64), np.concatenate(top_scores),
                  test, np.concatenate(t_scores), np.concatenate(t_ranks).astype(np.int64))


def recent_history(data: SplitData, users: np.ndarray, n: int) -> dict[int, list[int]]:
    """The last ``n`` train + valid items of each user, oldest first (what the model knew)."""
    u = np.concatenate([data.train.users, data.valid.users]).astype(np.int64)
    i = np.concatenate([data.train.items, data.valid.items]).astype(np.int64)
    t = np.concatenate([data.train.timestamps, data.valid.timestamps])
    keep = np.isin(u, users)
    u, i, t = u[keep], i[keep], t[keep]
    order = np.lexsort((i, t, u))
    u, i = u[order], i[order]
    out: dict[int, list[int]] = {int(x): [] for x in users}
    starts = np.searchsorted(u, users, side="left")
    ends = np.searchsorted(u, users, side="right")
    for user, a, b in zip(users.tolist(), starts.tolist(), ends.tolist(), strict=True):
        out[int(user)] = i[max(a, b - n) : b].tolist()
    return out


@dataclass
class Example:
    """One user's history, top-k and held-out item (rank from the same scores as the list)."""

    user_idx: int
    user_id: str
    history: list[Thumb]
    top: list[tuple[Thumb, float]]
    heldout: Thumb
    heldout_rank: int
    heldout_score: float
    heldout_cold: bool

    @property
    def hit(self) -> bool:
        return any(t.item_idx == self.heldout.item_idx for t, _ in self.top)


@dataclass
class Distractor:
    """The item most often in the top-k of sampled test users who never interacted with it."""

    thumb: Thumb
    n_lists: int  # top-k lists it appears in, where it is not the user's own test item
    n_users: int  # users whose lists were scanned
    train_popularity: int
    popularity_rank: int  # 1 = most interacted-with item in training
    n_items: int


@dataclass
class Examples:
    examples: list[Example]
    best: Example | None
    best_source: str
    distractor: Distractor | None
    k: int
    n_scanned: int
    thumbs: list[Thumb] = field(default_factory=list)


def _example(data: SplitData, ranked: Ranked, row: int, history: list[int], thumbs: Thumbnails) -> Example:
    user = int(ranked.users[row])
    item = int(ranked.test_item[row])
    return Example(
        user_idx=user,
        user_id=str(data.users[S.USER_ID][user]),
        history=[thumbs(i) for i in history],
        top=[(thumbs(i), s) for i, s in zip(ranked.top[row].tolist(), ranked.top_scores[row].tolist(),
                                            strict=True) if np.isfinite(s)],  # masked items never shown
        heldout=thumbs(item),
        heldout_rank=int(ranked.test_rank[row]),
        heldout_score=float(ranked.test_score[row]),
        heldout_cold=bool(data.cold_items[item]),
    )


def choose_examples(ranked: Ranked, n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """Rows of ``ranked`` to show: up to half hits (held-out item in the top-k), the rest misses."""
    hits = np.flatnonzero(ranked.test_rank <= k)
    misses = np.flatnonzero(ranked.test_rank > k)
    n_hit = min(len(hits), (n + 1) // 2)
    n_miss = min(len(misses), n - n_hit)
    n_hit = min(len(hits), n - n_miss)
    pick = np.concatenate([rng.choice(hits, n_hit, replace=False), rng.choice(misses, n_miss, replace=False)])
    return pick.astype(np.int64)


def best_case_user(
    rec: Recommender, data: SplitData, per_user: pl.DataFrame | None, ranked: Ranked
) -> tuple[int, str]:
    """The test user whose held-out item the model ranked best (ties: highest score of that item).

    Over all test users from the evaluator's per-user ranks (model ``fusion``, protocol ``full``)
    when they exist, else over the scanned sample.
    """
    if per_user is not None:
        rows = per_user.filter((pl.col("model") == "fusion") & (pl.col("protocol") == "full"))
        rows = rows.filter(pl.col(S.USER_IDX).is_between(0, data.n_users - 1))
        if rows.height:
            best = rows.filter(pl.col("rank") == pl.col("rank").min())[S.USER_IDX].unique().sort().to_numpy()
            best = best[test_items_of(data)[best] >= 0]
            if len(best):
                scores = rec.score(best, test_items_of(data)[best][:, None])[:, 0]
                n = rows[S.USER_IDX].n_unique()
                return int(best[np.argmax(scores)]), (
                    f"best rank among the {n:,} test users of the evaluator's full-ranking results")
    order = np.lexsort((-ranked.test_score, ranked.test_rank))
    return int(ranked.users[order[0]]), f"best rank among the {len(ranked.users):,} sampled test users"


def worst_distractor(data: SplitData, ranked: Ranked, thumbs: Thumbnails) -> Distractor | None:
    """Most frequent item across the scanned top-k lists, not counting a user's own test item
    (the lists already exclude the user's train and valid items)."""
    foreign = ranked.top != ranked.test_item[:, None]
    if not foreign.any():
        return None
    counts = np.bincount(ranked.top[foreign], minlength=data.n_items)
    item = int(np.argmax(counts))  # ties: lowest item_idx
    pop = data.train_popularity
    return Distractor(
        thumb=thumbs(item), n_lists=int(counts[item]), n_users=len(ranked.users),
        train_popularity=int(pop[item]), popularity_rank=int(1 + (pop > pop[item]).sum()),
        n_items=data.n_items,
    )


def build_examples(
    rec: Recommender, data: SplitData, raw_dir: Path, per_user: pl.DataFrame | None, *,
    n_examples: int, history_len: int, k: int, scan_users: int, thumb_px: int, seed: int,
) -> Examples:
    """Example users, the best case and the worst distractor, from one seeded sample of test users."""
    rng = np.random.default_rng(seed)
    test_users = np.unique(data.test.users).astype(np.int64)
    if not len(test_users):
        raise ValueError("the split has no test interaction: nothing to show in the examples")
    scan = np.sort(rng.choice(test_users, size=min(scan_users, len(test_users)), replace=False))
    ranked = rank_users(rec, data, scan, k)
    rows = choose_examples(ranked, n_examples, k, rng)
    best_user, best_source = best_case_user(rec, data, per_user, ranked)
    best_ranked = rank_users(rec, data, np.array([best_user]), k)
    history = recent_history(data, np.unique(np.append(ranked.users[rows], best_user)), history_len)

    thumbs = Thumbnails(raw_dir, data.items, thumb_px)
    examples = [_example(data, ranked, int(r), history[int(ranked.users[r])], thumbs) for r in rows]
    best = _example(data, best_ranked, 0, history[best_user], thumbs)
    distractor = worst_distractor(data, ranked, thumbs)
    return Examples(examples, best, best_source, distractor, k, len(scan), thumbs.used)
