"""The recommend stage: every user's top-k unseen items by the headline model and by each model of
``recommend.models`` (trained models and baselines alike), through the one scoring interface."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from pixrec import schema
from pixrec.config import ConfigError, section
from pixrec.data.dataset import SplitData
from pixrec.numerics import environment
from pixrec.serve.models import recommenders
from pixrec.serve.recommendations import lists_frame, vectors_entry
from pixrec.serve.topk import top_k_unseen


@section
class RecommendConfig:
    """``recommend`` in params.yaml."""

    k: int  # items per user
    models: list[str]  # besides models.headline: trained models or baselines, by name
    batch_users: int  # users per score block (peak memory: batch_users x n_items float32)

    def __post_init__(self) -> None:
        if self.k < 1 or self.batch_users < 1:
            raise ConfigError(f"recommend: k and batch_users must be >= 1, got {self.k}, {self.batch_users}")


def recommend_all(
    data: SplitData, headline: str, config: RecommendConfig, models_dir: Path, embeddings_dir: Path,
    tuning_dir: Path, log: Callable[[str], None] = print,
) -> tuple[dict, dict, dict]:
    """({model: frame (see :func:`lists_frame`)}, manifest, {model: {"items" | "users": its vectors}})
    for the headline model, then ``config.models`` in order; every user of the split, train + valid items
    masked; vectors for the models that compare items by them."""
    from pixrec.models.checkpoint import CHECKPOINT  # torch, as every recommender built below
    from pixrec.serve.placing import ContentPlacer, item_table, user_table

    names = list(dict.fromkeys([headline, *config.models]))
    users = data.users[schema.USER_IDX].to_numpy()
    user_ids = data.users[schema.USER_ID].to_numpy().astype(object)
    item_ids = data.items[schema.ITEM_ID].to_numpy().astype(object)
    frames, about, vectors = {}, {}, {}
    for rec in recommenders(names, data, models_dir, embeddings_dir, tuning_dir):
        t0 = time.perf_counter()
        top = top_k_unseen(rec, users, config.k, data.seen_matrix, config.batch_users)
        frames[rec.name] = lists_frame(top, user_ids, item_ids)
        about[rec.name] = {"users": len(users), "rows": frames[rec.name].height, "short_lists": top.n_short,
                           "file": f"{rec.name}{schema.RECS_SUFFIX}"}
        if isinstance(rec, ContentPlacer):  # `similar` needs no torch, `score-new` no user tower pass
            vectors[rec.name] = {"items": item_table(rec),
                                 "users": user_table(rec, data.n_users, config.batch_users)}
            about[rec.name]["vectors"] = vectors_entry(rec.name, Path(models_dir) / rec.name / CHECKPOINT)
        log(f"{rec.name}: top-{config.k} for {len(users):,} users in {time.perf_counter() - t0:.1f} s"
            f" ({top.n_short} users with fewer than {config.k} rankable unseen items)")
        del rec
    manifest = {"k": config.k, "batch_users": config.batch_users, "headline": headline, "models": about,
                "masked": "train + valid",
                "numerics": environment()}
    return frames, manifest, vectors
