"""Real recommendations with covers: example users, the best case and the worst distractor.

Nothing is scored here: each list is the evaluator's top-10 of the headline model and each rank the
evaluator's rank of the held-out item (``data/eval``), so a number on the page is the number behind
the metrics. Example users are a seeded draw from the model's full-protocol test users.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl
from PIL import Image, ImageDraw, ImageOps

from pixrec import schema
from pixrec.data.dataset import SplitData
from pixrec.report.inputs import ModelRanks


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
        cols = items.select(schema.ITEM_ID, schema.TITLE, schema.TAG, schema.COVER_PATH)
        self.item_id = cols[schema.ITEM_ID].to_list()
        self.title = cols[schema.TITLE].to_list()
        self.tag = cols[schema.TAG].to_list()
        self.cover = cols[schema.COVER_PATH].to_list()
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
    """One user's history, the evaluator's top list and held-out item with the evaluator's rank."""

    user_idx: int
    user_id: str
    history: list[Thumb]
    top: list[Thumb]
    heldout: Thumb
    heldout_rank: int
    heldout_cold: bool
    k: int  # length of the evaluator's lists

    @property
    def hit(self) -> bool:
        """The held-out item ranks within the list's length (what recall@k counts)."""
        return self.heldout_rank <= self.k

    @property
    def listed(self) -> bool:
        """The held-out item is in the shown list (a hit, unless it ties with the list's last items)."""
        return any(t.item_idx == self.heldout.item_idx for t in self.top)


@dataclass
class Distractor:
    """The item in the most top lists of test users for whom it is not the held-out item."""

    thumb: Thumb
    n_lists: int  # top lists it appears in, where it is not the user's own test item
    n_users: int  # users whose lists were counted
    train_popularity: int
    popularity_rank: int  # 1 = most interacted-with item in training
    n_items: int


@dataclass
class Examples:
    model: str
    examples: list[Example]
    best: Example | None
    best_source: str
    distractor: Distractor | None
    k: int
    n_users: int  # test users the examples are drawn from
    thumbs: list[Thumb] = field(default_factory=list)


def _example(data: SplitData, ranks: ModelRanks, row: int, history: list[int], thumbs: Thumbnails) -> Example:
    user, item = int(ranks.users[row]), int(ranks.targets[row])
    return Example(
        user_idx=user,
        user_id=str(data.users[schema.USER_ID][user]),
        history=[thumbs(i) for i in history],
        top=[thumbs(i) for i in ranks.top[row].tolist() if i >= 0],  # an empty slot is no recommendation
        heldout=thumbs(item),
        heldout_rank=int(ranks.ranks[row]),
        heldout_cold=bool(data.cold_items[item]),
        k=ranks.top.shape[1],
    )


def choose_examples(ranks: np.ndarray, n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """Rows of ``ranks`` (U,) to show: up to half hits (rank <= k), the rest misses, in row order."""
    hits = np.flatnonzero(ranks <= k)
    misses = np.flatnonzero(ranks > k)
    n_hit = min(len(hits), (n + 1) // 2)
    n_miss = min(len(misses), n - n_hit)
    n_hit = min(len(hits), n - n_miss)
    pick = np.concatenate([rng.choice(hits, n_hit, replace=False), rng.choice(misses, n_miss, replace=False)])
    return np.sort(pick).astype(np.int64)


def worst_distractor(n_items: int, popularity: np.ndarray, ranks: ModelRanks,
                     thumbs: Thumbnails) -> Distractor | None:
    """Most frequent item across every top list, not counting a user's own test item (the lists
    already exclude the user's train and valid items); ties: the lowest item_idx."""
    foreign = (ranks.top >= 0) & (ranks.top != ranks.targets[:, None])
    if not foreign.any():
        return None
    counts = np.bincount(ranks.top[foreign], minlength=n_items)
    item = int(np.argmax(counts))
    return Distractor(
        thumb=thumbs(item), n_lists=int(counts[item]), n_users=len(ranks.users),
        train_popularity=int(popularity[item]),
        popularity_rank=int(1 + (popularity > popularity[item]).sum()), n_items=n_items,
    )


def build_examples(data: SplitData, raw_dir: Path, ranks: ModelRanks, *, n_examples: int, history_len: int,
                   thumb_px: int, seed: int) -> Examples:
    """Example users (a seeded draw), the best case (the best rank; ties: the lowest user_idx) and the
    worst distractor, all from the evaluator's ranks and lists of one model."""
    if not len(ranks.users):
        raise ValueError(f"{ranks.model}: no full-protocol test user to show")
    k = ranks.top.shape[1]
    rows = choose_examples(ranks.ranks, n_examples, k, np.random.default_rng(seed))
    best = int(np.argmin(ranks.ranks))  # users ascending: the first minimum is the lowest user_idx
    history = recent_history(data, np.unique(ranks.users[np.append(rows, best)]), history_len)
    thumbs = Thumbnails(raw_dir, data.items, thumb_px)
    examples = [_example(data, ranks, int(r), history[int(ranks.users[r])], thumbs) for r in rows]
    best_example = _example(data, ranks, best, history[int(ranks.users[best])], thumbs)
    distractor = worst_distractor(data.n_items, data.train_popularity, ranks, thumbs)
    source = (f"best rank among the {len(ranks.users):,} test users of the evaluator's full-ranking "
              "results; ties: the lowest user index")
    return Examples(ranks.model, examples, best_example, source, distractor, k, len(ranks.users), thumbs.used)
