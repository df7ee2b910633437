"""The Python API over a pipeline workspace: what ``pixrec recommend / similar / score-new`` call.

    import pixrec
    ws = pixrec.load(".")                      # a workspace where `dvc repro` has run
    ws.recommend(["u12"], k=10)                # user_id, rank, item_id, score, title, tag
    ws.history(["u12"], n=5)                   # the user's last train + valid items
    ws.similar(["i123"], k=10)                 # item_id, rank, neighbour_id, cosine, title, tag
    placed = ws.score_new_items(pl.read_csv("new.csv"), covers_dir="new_covers")
    placed.users, placed.nearest               # who it would be recommended to; nearest catalogue items

Everything is read from the stages' outputs (the split, the embeddings, the trained models, the
recommend stage's lists), never from params.yaml: the workspace answers for what was last reproduced.
Each artefact is loaded on first use, so a question that needs only the stored lists never loads torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import polars as pl

from pixrec import schema
from pixrec.data.dataset import SplitData
from pixrec.errors import InputError
from pixrec.serve.models import load_trained
from pixrec.serve.neighbours import cosine_neighbours
from pixrec.serve.recommendations import Recommendations

SHOWN = (schema.TITLE, schema.TAG)  # item columns joined onto every answer


@dataclass(frozen=True)
class Paths:
    """Where a workspace keeps each stage's output (dvc.yaml's layout, relative to ``root``)."""

    split: Path
    embeddings: Path
    models: Path
    recommendations: Path

    @classmethod
    def of(cls, root: Path | str) -> Paths:
        r = Path(root)
        return cls(r / "data/split", r / "data/embeddings", r / "models", r / "data/recommendations")


class Pixrec:
    """A workspace's trained artefacts, loaded lazily (see the module docstring)."""

    def __init__(self, paths: Paths) -> None:
        self.paths = paths
        self._models: dict = {}

    def _require_split(self) -> None:
        """A workspace where nothing ran is told so first, not which later output is missing."""
        if not (self.paths.split / schema.USERS_FILE).is_file():
            raise InputError(f"{self.paths.split}: no split; run dvc repro (the split stage writes it)")

    @cached_property
    def data(self) -> SplitData:
        self._require_split()
        return SplitData.load(self.paths.split)

    @cached_property
    def lists(self) -> Recommendations:
        self._require_split()
        return Recommendations(self.paths.recommendations)

    @property
    def headline(self) -> str:
        """The model the recommend stage led with (params.yaml ``models.headline`` at the last repro)."""
        return self.lists.headline

    @cached_property
    def _user_index(self) -> dict[str, int]:
        return dict(zip(self.data.users[schema.USER_ID].to_list(), range(self.data.n_users), strict=True))

    @cached_property
    def _item_index(self) -> dict[str, int]:
        return dict(zip(self.data.items[schema.ITEM_ID].to_list(), range(self.data.n_items), strict=True))

    def user_idx(self, user_ids: list[str]) -> np.ndarray:
        """user_ids -> int64 (B,); an id not in the split is one InputError line naming it."""
        return _lookup(self._user_index, user_ids, "user", self.paths.split / schema.USERS_FILE)

    def item_idx(self, item_ids: list[str]) -> np.ndarray:
        """item_ids -> int64 (B,); an id not in the split is one InputError line naming it."""
        return _lookup(self._item_index, item_ids, "item", self.paths.split / schema.ITEMS_FILE)

    def describe(self, frame: pl.DataFrame, on: str = schema.ITEM_ID) -> pl.DataFrame:
        """``frame`` with each item's title and tag (from the split's item table) joined on ``on``."""
        items = self.data.items.select(pl.col(schema.ITEM_ID).alias(on), *SHOWN)
        return frame.join(items, on=on, how="left", maintain_order="left")

    def recommend(self, user_ids: list[str], k: int | None = None, model: str | None = None) -> pl.DataFrame:
        """Each user's top-``k`` unseen items (default: the stage's k) by ``model`` (default: the
        headline): user_id, rank, item_id, score, title, tag — the recommend stage's exact lists."""
        self.user_idx(user_ids)  # unknown ids fail here, by name
        lists = self.lists.lists(model or self.headline, list(user_ids), k or self.lists.k)
        return self.describe(lists)

    def model(self, name: str | None = None):
        """Trained model ``name`` (default: the headline) behind the scoring interface, loaded once."""
        name = name or self.headline
        if name not in self._models:
            self._models[name] = load_trained(name, self.paths.models, self.data, self.paths.embeddings)
        return self._models[name]

    def similar(self, item_ids: list[str], k: int = 10, model: str | None = None) -> pl.DataFrame:
        """Each item's ``k`` nearest catalogue items by cosine of ``model``'s item vectors (default: the
        headline; cold items from content): item_id, rank, neighbour_id, cosine, title, tag."""
        from pixrec.serve.placing import item_table, neighbours_frame, placer  # torch: on first use

        idx = self.item_idx(item_ids)
        table = item_table(placer(self.model(model)))
        rows, cos = cosine_neighbours(table, table[idx], k, exclude=idx)
        return self.describe(neighbours_frame(np.asarray(item_ids, dtype=object), rows, cos, self.data),
                             on="neighbour_id")

    def score_new_items(self, items: pl.DataFrame | Path | str, covers_dir: Path | str | None = None,
                        k: int | None = None, users: int = 10, model: str | None = None):
        """Items never seen (an item_info.csv-layout frame or file; covers as ``<item_id>.jpg`` in
        ``covers_dir``) embedded as the embed stages did, placed by ``model``'s item tower from content:
        a :class:`~pixrec.serve.placing.Placed` (per item: how many users' top-``k`` it enters, the
        first ``users`` of them, its ``k`` nearest catalogue items), plus ``report``: what was masked."""
        from pixrec.serve.new_items import load_new_items  # torch and the encoders: on first use
        from pixrec.serve.placing import new_item_vectors, place, placer

        rec = placer(self.model(model))
        k = k or self.lists.k
        new = load_new_items(items, self.data.items, None if covers_dir is None else Path(covers_dir),
                             self.paths.embeddings)
        vectors = new_item_vectors(rec, new, self.data)
        placed = place(rec, vectors, new.items[schema.ITEM_ID].to_list(), self.data, k, users,
                       self.lists.batch_users)
        placed.items = placed.items.join(new.items.select(schema.ITEM_ID, *SHOWN), on=schema.ITEM_ID,
                                         maintain_order="left")
        placed.nearest = self.describe(placed.nearest, on="neighbour_id")
        placed.report = new.report
        return placed

    def history(self, user_ids: list[str], n: int) -> pl.DataFrame:
        """Each user's last ``n`` train + valid interactions (what recommendations leave out), oldest
        first: user_id, item_id, timestamp, title, tag."""
        users = self.user_idx(user_ids)
        d = self.data
        seen = pl.DataFrame({
            schema.USER_IDX: np.concatenate([d.train.users, d.valid.users]),
            schema.ITEM_IDX: np.concatenate([d.train.items, d.valid.items]),
            schema.TIMESTAMP: np.concatenate([d.train.timestamps, d.valid.timestamps]),
            "_pos": np.arange(len(d.train) + len(d.valid)),  # file order breaks timestamp ties
        })
        order = pl.DataFrame({schema.USER_IDX: users.astype(np.int32), "_order": np.arange(len(users))})
        recent = (seen.join(order, on=schema.USER_IDX).sort("_order", schema.TIMESTAMP, "_pos")
                  .group_by("_order", maintain_order=True).tail(n))
        ids = pl.DataFrame({schema.USER_IDX: d.users[schema.USER_IDX],
                            schema.USER_ID: d.users[schema.USER_ID]})
        item_ids = d.items.select(schema.ITEM_IDX, schema.ITEM_ID)
        out = (recent.join(ids, on=schema.USER_IDX, how="left", maintain_order="left")
               .join(item_ids, on=schema.ITEM_IDX, how="left", maintain_order="left")
               .select(schema.USER_ID, schema.ITEM_ID, schema.TIMESTAMP))
        return self.describe(out)


def _lookup(index: dict[str, int], ids: list[str], what: str, source: Path) -> np.ndarray:
    missing = [i for i in ids if i not in index]
    if missing:
        raise InputError(f"unknown {what} id {missing[0]!r} ({len(missing)} of {len(ids)} not in {source})")
    return np.fromiter((index[i] for i in ids), dtype=np.int64, count=len(ids))


def load(workspace: Path | str = ".") -> Pixrec:
    """The workspace at ``workspace`` (a pipeline checkout where ``dvc repro`` has run)."""
    root = Path(workspace)
    if not root.is_dir():
        raise InputError(f"{root}: not a directory (expected a pixrec pipeline checkout)")
    return Pixrec(Paths.of(root))
