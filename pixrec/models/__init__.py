"""The trained models, two readable files each, behind one registry keyed by the names params.yaml
uses (``models.fit``, ``models.headline``, and each model's own section of that name).

    fusion      models/fusion_net.py: the six-token pair model (MHSA + MLP over one (user, item)
                pair), the poster's reference architecture; models/fusion.py: its task and scorer
    two_tower   models/two_tower_net.py: the flagship, a multimodal item tower and a sequential user
                tower scored by a dot product; models/two_tower.py: its task and scorer

Each model is a network file (its ``nn.Module`` and config) and a file that trains and scores it;
both write and read the one checkpoint format of :mod:`pixrec.models.checkpoint`. A family is its
params section type, how to build its training task (``pixrec.training.Task``), how to load a
trained one as a :class:`pixrec.scoring.Recommender`, and which training inputs it reads. A new
model is its two files and one :data:`MODELS` entry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pixrec.config import section
from pixrec.registry import Registry


@dataclass(frozen=True, kw_only=True)  # built with keywords: no bare booleans at the call
class ModelFamily:
    section: type  # the model's params section: ``model``, ``train`` (+ its own keys)
    task: Callable[..., Any]  # (data, embeddings, negatives | None, section, device, yardstick | None)
    load: Callable[..., Any]  # (model_dir, data, embeddings_dir, name) -> Recommender
    tokens_key: str  # the config field listing the model's input tokens (ablation drops from it)
    reads_negatives: bool  # trains on the negative-sample stage's materialised negatives
    reads_tuning: bool  # needs the tune stage's validation yardstick (pixrec.models.cold_lift.Yardstick)
    pairwise: bool  # scores each (user, item) pair through the network: exact full ranking costs
    # n_users x n_items forward passes, so ``eval.ranking: two_stage`` applies to it


def _fusion() -> ModelFamily:
    from pixrec.models import fusion

    def task(data, embeddings, negatives, section, device, yardstick=None):
        return fusion.FusionTask(data, embeddings, negatives, section.model, section.train, device)

    return ModelFamily(section=fusion.FusionSection, task=task, load=fusion.load_recommender,
                       tokens_key="modalities", reads_negatives=True, reads_tuning=False, pairwise=True)


def _two_tower() -> ModelFamily:
    from pixrec.models import two_tower

    def task(data, embeddings, negatives, section, device, yardstick=None):
        if yardstick is None:
            raise ValueError("the two-tower task chooses its cold lift against the tune stage's yardstick")
        return two_tower.TwoTowerTask(data, embeddings, section, device, yardstick)

    return ModelFamily(section=two_tower.TwoTowerSection, task=task, load=two_tower.load_recommender,
                       tokens_key="tokens", reads_negatives=False, reads_tuning=True, pairwise=False)


# entries are factories, so naming a model imports torch only when it is used
MODELS: Registry[Callable[[], ModelFamily]] = Registry("model")
MODELS.register("fusion")(_fusion)
MODELS.register("two_tower")(_two_tower)


def family(name: str) -> ModelFamily:
    """The family registered as ``name`` (an unknown name lists the valid ones)."""
    return MODELS.get(name)()


def train_stage(name: str) -> str:
    """The dvc.yaml stage that trains model ``name``: ``two_tower`` -> ``train@two_tower`` (the train
    matrix has one cell per model of ``models.fit``)."""
    return f"train@{name}"


@section
class RerankConfig:
    """``eval.rerank``: a row where the six-token pair model re-scores the headline model's top
    ``top_n`` unseen items per user (retrieve with the cheap model, re-rank with the expressive one);
    0 = no such row."""

    top_n: int


def reranked(retriever, ranker, top_n: int, data):
    """``retriever``'s top ``top_n`` unseen (train + valid masked) items per user, re-scored by
    ``ranker``; every other item ranks last. A Recommender named ``<retriever>+rerank``."""
    from pixrec.scoring import TwoStage

    out = TwoStage(ranker, [retriever], top_n, exclude=data.seen_matrix)
    out.name = f"{retriever.name}+rerank"
    return out
