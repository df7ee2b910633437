"""Placing items by content: a dot-product model's item vectors for ``pixrec similar``, and for items
that arrive after training (``pixrec score-new``) a vector from the model's item tower with the ID
token absent — a cold item's path — then the users whose top-k each would enter, exactly (every user's
list over the catalogue plus the new items), and its nearest catalogue items."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np
import polars as pl
import scipy.sparse as sp

from pixrec import schema
from pixrec.data.dataset import Interactions, SplitData
from pixrec.errors import InputError
from pixrec.features import Embeddings, build_item_features
from pixrec.serve.neighbours import cosine_neighbours, neighbours_frame
from pixrec.serve.new_item_file import INPUTS
from pixrec.serve.new_items import NewItems
from pixrec.serve.topk import top_k_unseen


@runtime_checkable
class ContentPlacer(Protocol):
    """A Recommender with an item table and an item tower that places items from content alone
    (``pixrec.models.two_tower.TwoTowerRecommender``)."""

    name: str
    n_items: int
    items: object  # (N, D) torch tensor: warm items with their ID token, cold items from content
    count_stats: object  # the training items' count statistics (pixrec.features.CountStats)

    def user_vectors(self, users) -> object: ...  # user_idx (B,) -> (B, D) torch: the user tower's state

    def new_item_vectors(self, feats) -> object: ...  # ItemFeatures of M items -> (M, D)

    def with_new_items(self, vectors) -> object: ...  # (M, D) -> the recommender over N + M items


def placer(rec) -> ContentPlacer:
    """``rec`` if it places items by content, else one InputError line saying which model does."""
    if not isinstance(rec, ContentPlacer):
        raise InputError(f"model {rec.name!r} has no item vectors to compare or place items with; use a "
                         "dot-product model such as two_tower (--model two_tower)")
    return rec


def content_inputs(rec: ContentPlacer) -> frozenset[str]:
    """The content inputs (tag, counts, text, image) the model's item tower reads: its config's
    ``tokens`` where it has them, else all of them."""
    tokens = getattr(getattr(getattr(rec, "model", None), "config", None), "tokens", None)
    return frozenset(INPUTS) if tokens is None else frozenset(tokens) & frozenset(INPUTS)


def item_table(rec: ContentPlacer) -> np.ndarray:
    """float32 (N, D): the model's item vectors."""
    return rec.items.detach().cpu().numpy().astype(np.float32, copy=False)


def user_table(rec: ContentPlacer, n_users: int, batch_users: int) -> np.ndarray:
    """float32 (n_users, D): every user's vector, in the blocks of ``batch_users`` users that scoring
    them all uses (a block's padding is its own), so reading them back gives the same bytes."""
    import torch

    with torch.inference_mode():
        blocks = [rec.user_vectors(np.arange(s, min(s + batch_users, n_users)))
                  for s in range(0, n_users, batch_users)]
    return torch.cat(blocks).cpu().numpy().astype(np.float32, copy=False)


def with_user_table(rec: ContentPlacer, table: np.ndarray) -> ContentPlacer:
    """``rec`` taking its users' vectors from ``table`` (:func:`user_table`, as the recommend stage
    stored it) instead of running the user tower again for every user."""
    import torch

    vectors = torch.from_numpy(np.ascontiguousarray(table))
    out = copy.copy(rec)
    out.user_vectors = lambda users: vectors[torch.as_tensor(users, dtype=torch.long)]
    return out


def new_item_vectors(rec: ContentPlacer, new: NewItems, data: SplitData) -> np.ndarray:
    """float32 (M, D): each new item through the item tower from its tag, text and cover (and counts if
    the model reads them, standardised with the training items' statistics), ID token absent."""
    items = new.items.with_columns(pl.lit(0, dtype=pl.Int32).alias(schema.N_TRAIN))  # never trained
    none = Interactions(*(np.zeros(0, dtype=t) for t in (np.int32, np.int32, np.int64)))
    alone = SplitData(none, none, none, data.users, items, {})
    sides = {"text": Embeddings(*new.text, {}), "image": Embeddings(*new.image, {})}
    vectors = rec.new_item_vectors(build_item_features(alone, sides, rec.count_stats))
    return vectors.numpy().astype(np.float32, copy=False)


@dataclass
class Placed:
    """``items``: item_id, n_users (users whose top-k it enters); ``users``: item_id, user_id, rank
    (in that user's list), score — at most ``users`` per item, best rank first; ``nearest``: item_id,
    rank, neighbour_id, cosine."""

    items: pl.DataFrame
    users: pl.DataFrame
    nearest: pl.DataFrame
    report: list[str] = field(default_factory=list)  # what was repaired or masked in the input


def place(rec: ContentPlacer, vectors: np.ndarray, item_ids: list[str], data: SplitData, k: int,
          n_users: int, batch_users: int) -> Placed:
    """Every user's top-``k`` unseen items over the catalogue plus the new items (``vectors`` (M, D));
    each new item's users are those whose list it enters. Nearest: ``k`` catalogue items by cosine."""
    import torch

    n, m = rec.n_items, len(vectors)
    extended = rec.with_new_items(torch.from_numpy(vectors))
    seen = sp.hstack([data.seen_matrix, sp.csr_matrix((data.n_users, m), dtype=np.float32)], format="csr")
    top = top_k_unseen(extended, np.arange(data.n_users), k, seen, batch_users)
    user_row, slot = np.nonzero(top.items >= n)  # (user, rank) cells holding a new item
    ids = np.asarray(item_ids, dtype=object)
    hits = pl.DataFrame({
        schema.ITEM_ID: ids[top.items[user_row, slot] - n],
        schema.USER_ID: data.users[schema.USER_ID].to_numpy().astype(object)[user_row],
        schema.REC_RANK: (slot + 1).astype(np.int32), schema.REC_SCORE: top.scores[user_row, slot],
    }, schema={schema.ITEM_ID: pl.Utf8, schema.USER_ID: pl.Utf8, schema.REC_RANK: pl.Int32,
               schema.REC_SCORE: pl.Float32})
    counts = hits.group_by(schema.ITEM_ID).len("n_users")
    summary = (pl.DataFrame({schema.ITEM_ID: item_ids}, schema={schema.ITEM_ID: pl.Utf8})
               .join(counts, on=schema.ITEM_ID, how="left", maintain_order="left")
               .with_columns(pl.col("n_users").fill_null(0).cast(pl.Int64)))
    order = pl.DataFrame({schema.ITEM_ID: item_ids, "_order": np.arange(m)},
                         schema={schema.ITEM_ID: pl.Utf8, "_order": pl.Int64})
    users = (hits.join(order, on=schema.ITEM_ID)
             .sort("_order", schema.REC_RANK, pl.col(schema.REC_SCORE), schema.USER_ID,
                   descending=[False, False, True, False])
             .group_by("_order", maintain_order=True).head(n_users).drop("_order"))
    rows, cos = cosine_neighbours(item_table(rec), vectors, k)
    return Placed(summary, users, neighbours_frame(ids, rows, cos, data.items[schema.ITEM_ID].to_numpy()))
