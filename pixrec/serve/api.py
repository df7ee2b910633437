"""The Python API over a pipeline workspace: what ``pixrec recommend / similar / score-new`` call.

    import pixrec
    ws = pixrec.load(".")                      # a workspace where `dvc repro` has run
    ws.recommend(["u12"], k=10)                # user_id, rank, item_id, score, title, tag
    ws.history(["u12"], n=5)                   # the user's last train + valid items

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

from pixrec import schema as S
from pixrec.data.dataset import SplitData
from pixrec.errors import InputError
from pixrec.serve.recommendations import Recommendations

SHOWN = (S.TITLE, S.TAG)  # item columns joined onto every answer


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

    @cached_property
    def data(self) -> SplitData:
        if not (self.paths.split / S.USERS_FILE).is_file():
            raise InputError(f"{self.paths.split}: no split; run dvc repro (the split stage writes it)")
        return SplitData.load(self.paths.split)

    @cached_property
    def lists(self) -> Recommendations:
        return Recommendations(self.paths.recommendations)

    @property
    def headline(self) -> str:
        """The model the recommend stage led with (params.yaml ``models.headline`` at the last repro)."""
        return self.lists.headline

    @cached_property
    def _user_index(self) -> dict[str, int]:
        return dict(zip(self.data.users[S.USER_ID].to_list(), range(self.data.n_users), strict=True))

    @cached_property
    def _item_index(self) -> dict[str, int]:
        return dict(zip(self.data.items[S.ITEM_ID].to_list(), range(self.data.n_items), strict=True))

    def user_idx(self, user_ids: list[str]) -> np.ndarray:
        """user_ids -> int64 (B,); an id not in the split is one InputError line naming it."""
        return _lookup(self._user_index, user_ids, "user", self.paths.split / S.USERS_FILE)

    def item_idx(self, item_ids: list[str]) -> np.ndarray:
        """item_ids -> int64 (B,); an id not in the split is one InputError line naming it."""
        return _lookup(self._item_index, item_ids, "item", self.paths.split / S.ITEMS_FILE)

    def describe(self, frame: pl.DataFrame, on: str = S.ITEM_ID) -> pl.DataFrame:
        """``frame`` with each item's title and tag (from the split's item table) joined on ``on``."""
        items = self.data.items.select(pl.col(S.ITEM_ID).alias(on), *SHOWN)
        return frame.join(items, on=on, how="left", maintain_order="left")

    def recommend(self, user_ids: list[str], k: int | None = None, model: str | None = None) -> pl.DataFrame:
        """Each user's top-``k`` unseen items (default: the stage's k) by ``model`` (default: the
        headline): user_id, rank, item_id, score, title, tag — the recommend stage's exact lists."""
        self.user_idx(user_ids)  # unknown ids fail here, by name
        lists = self.lists.lists(model or self.headline, list(user_ids), k or self.lists.k)
        return self.describe(lists)

    def history(self, user_ids: list[str], n: int) -> pl.DataFrame:
        """Each user's last ``n`` train + valid interactions (what recommendations leave out), oldest
        first: user_id, item_id, timestamp, title, tag."""
        users = self.user_idx(user_ids)
        d = self.data
        seen = pl.DataFrame({
            S.USER_IDX: np.concatenate([d.train.users, d.valid.users]),
            S.ITEM_IDX: np.concatenate([d.train.items, d.valid.items]),
            S.TIMESTAMP: np.concatenate([d.train.timestamps, d.valid.timestamps]),
            "_pos": np.arange(len(d.train) + len(d.valid)),  # file order breaks timestamp ties
        })
        order = pl.DataFrame({S.USER_IDX: users.astype(np.int32), "_order": np.arange(len(users))})
        recent = (seen.join(order, on=S.USER_IDX).sort("_order", S.TIMESTAMP, "_pos")
                  .group_by("_order", maintain_order=True).tail(n))
        ids = pl.DataFrame({S.USER_IDX: d.users[S.USER_IDX], S.USER_ID: d.users[S.USER_ID]})
        item_ids = d.items.select(S.ITEM_IDX, S.ITEM_ID)
        out = (recent.join(ids, on=S.USER_IDX, how="left", maintain_order="left")
               .join(item_ids, on=S.ITEM_IDX, how="left", maintain_order="left")
               .select(S.USER_ID, S.ITEM_ID, S.TIMESTAMP))
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
