"""The Python API over a pipeline workspace: what ``pixrec recommend / similar / score-new`` call.

    import pixrec
    ws = pixrec.load(".")                      # a workspace where `dvc repro` has run
    ws.recommend(["u92"], k=10)                # user_id, rank, item_id, score, title, tag
    ws.history(["u92"], n=5)                   # the user's last train + valid items
    ws.similar(["i8056", "i64"], k=10)         # item_id, rank, neighbour_id, cosine, title, tag
    ws.cold(["i8056", "i64"])                  # [False, True]: i64's vector comes from its content
    placed = ws.score_new_items(pl.read_csv("new.csv"), covers_dir="new_covers")
    placed.users, placed.nearest               # who it would be recommended to; nearest catalogue items
    placed.report                              # what was masked or imputed, naming the items

(``u92``, ``i8056`` and ``i64``: a test user, a warm and a cold item of the built-in default data.)

Everything is read from the stages' outputs (the split, the embeddings, the trained models, the
recommend stage's lists and item vectors), never from params.yaml: the workspace answers for what was
last reproduced. Each artefact is loaded on first use, and ids and arguments are checked against the
split's small user and item tables first: ``recommend`` and ``similar`` (from the stored item vectors)
never load torch, and a bad id or ``k`` is refused before anything heavy loads.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from pixrec import schema
from pixrec.errors import InputError
from pixrec.serve.neighbours import cosine_neighbours, neighbours_frame
from pixrec.serve.recommendations import Recommendations

if TYPE_CHECKING:
    from pixrec.data.dataset import SplitData

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

    def _table(self, name: str) -> pl.DataFrame:
        self._require_split()
        path = self.paths.split / name
        if not path.is_file():
            raise InputError(f"{path}: missing; run dvc repro split")
        return pl.read_parquet(path)

    @cached_property
    def users(self) -> pl.DataFrame:
        """The split's user table (users.parquet), read alone."""
        return self._table(schema.USERS_FILE)

    @cached_property
    def items(self) -> pl.DataFrame:
        """The split's item table (items.parquet), read alone: ids, titles, tags, is_cold."""
        return self._table(schema.ITEMS_FILE)

    @cached_property
    def data(self) -> SplitData:
        """The whole split (interactions too): what a model needs to load."""
        from pixrec.data.dataset import SplitData

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
        return dict(zip(self.users[schema.USER_ID].to_list(), range(self.users.height), strict=True))

    @cached_property
    def _item_index(self) -> dict[str, int]:
        return dict(zip(self.items[schema.ITEM_ID].to_list(), range(self.items.height), strict=True))

    def user_idx(self, user_ids: list[str]) -> np.ndarray:
        """user_ids -> int64 (B,); an id not in the split is one InputError line naming it."""
        return _lookup(self._user_index, user_ids, "user", self.paths.split / schema.USERS_FILE)

    def item_idx(self, item_ids: list[str]) -> np.ndarray:
        """item_ids -> int64 (B,); an id not in the split is one InputError line naming it."""
        return _lookup(self._item_index, item_ids, "item", self.paths.split / schema.ITEMS_FILE)

    def describe(self, frame: pl.DataFrame, on: str = schema.ITEM_ID) -> pl.DataFrame:
        """``frame`` with each item's title and tag (from the split's item table) joined on ``on``."""
        items = self.items.select(pl.col(schema.ITEM_ID).alias(on), *SHOWN)
        return frame.join(items, on=on, how="left", maintain_order="left")

    def cold(self, item_ids: list[str]) -> list[bool]:
        """Whether each item had no training interaction (its vector then comes from its content)."""
        return self.items[schema.IS_COLD].gather(self.item_idx(item_ids)).to_list()

    def recommend(self, user_ids: list[str], k: int | None = None, model: str | None = None) -> pl.DataFrame:
        """Each user's top-``k`` unseen items (default: the stage's k) by ``model`` (default: the
        headline): user_id, rank, item_id, score, title, tag — the recommend stage's exact lists."""
        self.user_idx(user_ids)  # unknown ids fail here, by name
        k = self.lists.k if k is None else at_least("k", k, 1)
        lists = self.lists.lists(model or self.headline, list(user_ids), k)
        return self.describe(lists)

    def model(self, name: str | None = None):
        """Trained model ``name`` (default: the headline) behind the scoring interface, loaded once."""
        from pixrec.serve.models import load_trained  # torch: on first use

        name = name or self.headline
        if name not in self._models:
            self._models[name] = load_trained(name, self.paths.models, self.data, self.paths.embeddings)
        return self._models[name]

    def item_vectors(self, model: str | None = None) -> np.ndarray:
        """float32 (N, D): ``model``'s item vectors (default: the headline's; cold items from content), as
        the recommend stage stored them when they are of the checkpoint now in models/ (no torch), else
        from the model itself."""
        name = model or self.headline
        stored = self.stored_vectors(name, "items")
        if stored is not None:
            return stored
        from pixrec.serve.placing import item_table, placer  # torch: on first use

        return item_table(placer(self.model(name)))

    def stored_vectors(self, model: str, side: str) -> np.ndarray | None:
        """``model``'s ``items`` or ``users`` vectors as the recommend stage stored them, if they are of
        this split and of the checkpoint now in models/ (else None)."""
        stored = self.lists.vectors(model, side, self.paths.models)
        rows = self.items.height if side == "items" else self.users.height
        return stored if stored is not None and len(stored) == rows else None

    def similar(self, item_ids: list[str], k: int = 10, model: str | None = None) -> pl.DataFrame:
        """Each item's ``k`` nearest catalogue items by cosine of ``model``'s item vectors (default: the
        headline; cold items from content): item_id, rank, neighbour_id, cosine, title, tag."""
        idx = self.item_idx(item_ids)  # unknown ids fail here, by name, before any vector is read
        at_least("k", k, 1)
        table = self.item_vectors(model)
        rows, cos = cosine_neighbours(table, table[idx], k, exclude=idx)
        found = neighbours_frame(item_ids, rows, cos, self.items[schema.ITEM_ID].to_numpy())
        return self.describe(found, on="neighbour_id")

    def score_new_items(self, items: pl.DataFrame | Path | str, covers_dir: Path | str | None = None,
                        k: int | None = None, users: int = 10, model: str | None = None):
        """Items never seen (an item_info.csv-layout frame or file; covers as ``<item_id>.jpg`` in
        ``covers_dir``) embedded as the embed stages did, placed by ``model``'s item tower from content:
        a :class:`~pixrec.serve.placing.Placed` (per item: how many users' top-``k`` it enters, the
        first ``users`` of them, its ``k`` nearest catalogue items), plus ``report``: one line per
        defect naming the items (what was masked or imputed among the inputs the model reads)."""
        k = self.lists.k if k is None else at_least("k", k, 1)
        at_least("users", users, 0)
        from pixrec.serve.new_item_file import read_new_items

        covers = None if covers_dir is None else Path(covers_dir)
        frame, notes = read_new_items(items, self.items, covers)  # a bad file fails before any model loads
        from pixrec.serve.new_items import embed_new_items  # torch and the encoders: from here on
        from pixrec.serve.placing import content_inputs, new_item_vectors, place, placer, with_user_table

        rec = placer(self.model(model))
        users_table = self.stored_vectors(rec.name, "users")
        if users_table is not None:  # every user's vector as the stage computed it: no user tower pass
            rec = with_user_table(rec, users_table)
        new = embed_new_items(frame, notes, covers, self.paths.embeddings)
        reads = content_inputs(rec)
        blank = new.without_content(reads)
        new.notes.add(f"no usable content for this model ({', '.join(sorted(reads))} all absent): placed "
                      "where it puts an item it knows nothing about", blank)
        vectors = new_item_vectors(rec, new, self.data)
        placed = place(rec, vectors, new.items[schema.ITEM_ID].to_list(), self.data, k, users,
                       self.lists.batch_users)
        placed.items = placed.items.join(new.items.select(schema.ITEM_ID, *SHOWN), on=schema.ITEM_ID,
                                         maintain_order="left")
        placed.nearest = self.describe(placed.nearest, on="neighbour_id")
        placed.report = new.notes.lines(reads)
        return placed

    def history(self, user_ids: list[str], n: int) -> pl.DataFrame:
        """Each user's last ``n`` train + valid interactions (what recommendations leave out), oldest
        first: user_id, item_id, timestamp, title, tag. Reads the two interaction files alone."""
        users = self.user_idx(user_ids)
        at_least("n", n, 0)
        split = self.paths.split
        parts = [pl.scan_parquet(split / f).select(schema.USER_IDX, schema.ITEM_IDX, schema.TIMESTAMP)
                 for f in (schema.TRAIN_FILE, schema.VALID_FILE)]
        seen = pl.concat(parts).with_row_index("_pos")  # file order (train, then valid) breaks ties
        order = pl.LazyFrame({schema.USER_IDX: users, "_order": np.arange(len(users))}).with_columns(
            pl.col(schema.USER_IDX).cast(pl.Int32))
        recent = (seen.join(order, on=schema.USER_IDX).sort("_order", schema.TIMESTAMP, "_pos")
                  .group_by("_order", maintain_order=True).tail(n))
        ids = self.users.select(schema.USER_IDX, schema.USER_ID).lazy()
        item_ids = self.items.select(schema.ITEM_IDX, schema.ITEM_ID).lazy()
        out = (recent.join(ids, on=schema.USER_IDX, how="left", maintain_order="left")
               .join(item_ids, on=schema.ITEM_IDX, how="left", maintain_order="left")
               .select(schema.USER_ID, schema.ITEM_ID, schema.TIMESTAMP).collect())
        return self.describe(out)


def at_least(name: str, value: int, least: int) -> int:
    """``value``, or one InputError line naming the argument when it is below ``least``."""
    if value < least:
        raise InputError(f"{name} must be >= {least}, got {value}")
    return value


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
