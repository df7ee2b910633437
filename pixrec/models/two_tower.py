"""Training and scoring with the two-tower network (:mod:`pixrec.models.two_tower_net`, which
describes the model): the ``two_tower`` params section, a training step's batch (:func:`make_batch`),
the training task (:class:`TwoTowerTask`), the scoring interface (:class:`TwoTowerRecommender`) and
loading a trained one (:func:`load_recommender`).

A step is ``batch_size`` users: every position of each user's time-ordered history predicts the next
item among the batch's positives and a shared uniform sample (``pixrec.losses``), with item-ID
dropout drawn per step. Scoring is exact: the item table is computed once, a user's vector is the
user tower's last state, and full ranking is one matrix product.
"""

from __future__ import annotations

import copy
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from torch import nn

from pixrec.config import section
from pixrec.data.dataset import SplitData
from pixrec.features import CountStats, Embeddings, ItemFeatures, build_item_features, count_stats, to_device
from pixrec.histories import Histories
from pixrec.models import checkpoint
from pixrec.models.cold_lift import Yardstick, choose_cold_offset
from pixrec.models.two_tower_net import NEVER, SeqBatch, TwoTower, TwoTowerConfig, first_seen
from pixrec.training import TrainConfig, validation_ndcg, validation_sample


@section
class SelectConfig:
    """``two_tower.select``: knobs chosen on validation after training, never on test."""

    cold_offset: list[float]  # candidate lifts of never-seen items, in units of each user's score std


@section
class TwoTowerSection:
    """The ``two_tower`` section of params.yaml."""

    model: TwoTowerConfig
    train: TrainConfig
    select: SelectConfig


def make_batch(histories: Histories, users: torch.Tensor, n_negatives: int, id_dropout: float,
               positive_rate: torch.Tensor, gen: torch.Generator) -> SeqBatch:
    """The step for ``users`` (B,): their histories cut to the longest one in the batch, the shared
    uniform negatives, the ID-dropout draw. ``positive_rate`` (N,): each item's share of training
    positions, for logQ: a candidate's expected count is P * rate + n_negatives / N."""
    items, times = histories.items[users], histories.times[users]
    width = max(int((items >= 0).sum(dim=1).max()), 2)
    items, times = items[:, -width:], times[:, -width:]
    inputs, nxt = items[:, :-1], items[:, 1:]
    valid = (inputs >= 0) & (nxt >= 0)
    positives = nxt[valid]  # (P,)
    n_items = len(positive_rate)
    negatives = torch.randint(0, n_items, (n_negatives,), generator=gen)
    candidates = torch.unique(torch.cat([positives, negatives]))
    need = torch.unique(torch.cat([candidates, inputs[inputs >= 0]]))
    show_id = torch.rand(len(need), generator=gen) >= id_dropout
    log_q = torch.log(len(positives) * positive_rate[candidates] + n_negatives / n_items)
    return SeqBatch(inputs, valid, times[:, :-1][valid], candidates,
                    torch.searchsorted(candidates, positives), log_q.float(), need, show_id)


class TwoTowerRecommender:
    """The scoring interface (:class:`pixrec.scoring.Recommender`) over a trained TwoTower.

    The item table is computed once: warm items with their ID token, cold items (no training
    interaction) from content alone. A user's vector is the user tower's state after the last
    training item. ``score_all`` is then one (B, D) x (D, N) product plus the freshness bias, plus
    ``cold_offset`` times the user's score standard deviation over the catalogue for cold items
    (chosen on validation: :func:`pixrec.models.cold_lift.choose_cold_offset`).

    It also places items by content (``pixrec.serve.placing.ContentPlacer``): :meth:`new_item_vectors`
    and :meth:`with_new_items`, a recommender over the catalogue and items that arrived after training.
    """

    def __init__(self, model: TwoTower, feats: ItemFeatures, histories: Histories, cold_offset: float,
                 name: str = "two_tower", count_stats: CountStats | None = None) -> None:
        self.model = model.eval()
        self.histories = histories
        self.name = name
        self.n_items = self.n_catalogue = feats.n_items
        self.cold_offset = cold_offset
        if count_stats is None:  # neutral: the counts token's inputs are built but never read
            if "counts" in model.config.tokens:
                raise ValueError("a two-tower model reading counts needs its training count statistics")
            n = feats.counts.shape[1] // 2  # standardised values + missing flags
            count_stats = CountStats([0.0] * n, [1.0] * n)
        self.count_stats = count_stats  # the training items': new items' counts are standardised by them
        self.cold = (~feats.known).float()  # (N,)
        fresh = model.freshness
        self.first_seen = None if fresh is None else fresh.first_seen  # (N,) int64, NEVER = cold
        with torch.inference_mode():
            every = torch.arange(self.n_items)
            self.items = model.item_vectors(feats, every, torch.ones(self.n_items, dtype=torch.bool))

    @torch.inference_mode()
    def new_item_vectors(self, feats: ItemFeatures) -> torch.Tensor:
        """(M, D): items that are not the catalogue's (``feats`` holds M rows) through the item tower
        with the ID token absent — the path of a catalogue item with no training interaction."""
        m = feats.n_items
        return self.model.item_vectors(feats, torch.arange(m), torch.zeros(m, dtype=torch.bool))

    def with_new_items(self, vectors: torch.Tensor) -> TwoTowerRecommender:
        """This recommender over N + M items, ``vectors`` (M, D) appended as items N..N+M-1, each
        scored as a catalogue item never seen in training is: freshness bucket 0 and the cold offset
        (the offset's score spread stays the catalogue's, so catalogue scores do not move)."""
        m = len(vectors)
        out = copy.copy(self)
        out.items = torch.cat([self.items, vectors.to(self.items.dtype)])
        out.cold = torch.cat([self.cold, torch.ones(m)])
        if self.first_seen is not None:
            out.first_seen = torch.cat([self.first_seen, torch.full((m,), NEVER, dtype=torch.int64)])
        out.n_items = self.n_items + m
        return out

    @torch.inference_mode()
    def user_vectors(self, users: np.ndarray) -> torch.Tensor:
        """users (B,) -> (B, D): the state after each user's last training item."""
        hist = self.histories.items[torch.as_tensor(users, dtype=torch.long)]
        width = max(int((hist >= 0).sum(dim=1).max()), 1)
        hist = hist[:, -width:]
        return self.model.user_states(hist, self.items[hist.clamp(min=0)])[:, -1]

    @torch.inference_mode()
    def base_scores(self, users: np.ndarray) -> torch.Tensor:
        """users (B,) -> (B, N): dot products and freshness bias, before any cold lift."""
        users_t = torch.as_tensor(users, dtype=torch.long)
        scores = self.user_vectors(users) @ self.items.T * self.model.logit_scale  # (B, N)
        if self.model.freshness is not None:
            scores = scores + self.model.freshness.at(self.histories.last_time(users_t), self.first_seen)
        return scores

    def lifted(self, scores: torch.Tensor, offset: float) -> torch.Tensor:
        """(B, N) -> (B, N): never-seen items lifted by ``offset`` x each user's score spread over the
        catalogue."""
        if not offset:
            return scores
        spread = scores[:, : self.n_catalogue].std(dim=1, keepdim=True)
        return scores + offset * spread * self.cold[None, :]

    @torch.inference_mode()
    def score_all(self, users: np.ndarray) -> np.ndarray:
        """users (B,) -> float32 (B, N) (N + M after :meth:`with_new_items`)."""
        return self.lifted(self.base_scores(users), self.cold_offset).numpy()

    def score(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """users (B,), items (B, C) -> float32 (B, C)."""
        return np.take_along_axis(self.score_all(users), np.asarray(items), axis=1)


class TwoTowerTask:
    """Training the two-tower model (:class:`pixrec.training.Task`): a sample is a user with at
    least two training items; a step is ``batch_size`` users, every history position predicting the
    next item. Validation ranks every validation user's item against every item (one matmul)."""

    def __init__(self, data: SplitData, embeddings: dict[str, Embeddings], section: TwoTowerSection,
                 device: torch.device, yardstick: Yardstick) -> None:
        config, train = section.model, section.train
        torch.manual_seed(train.seed)  # init and dropout draw from torch's default RNG
        self.data, self.config, self.device, self.select = data, config, device, section.select
        self.yardstick = yardstick  # the best tuned baselines' validation NDCG@10: the cold lift's rule
        self.stats = count_stats(data)  # standardises lifetime counts: read only if tokens asks
        self.feats = build_item_features(data, embeddings, self.stats)
        self.dims = checkpoint.item_dims(data, self.feats)
        self.module = TwoTower(config, **self.dims)
        # one more column than the model reads: position t's next item is the target
        self.histories = Histories.build(data.train, data.n_users, config.max_history + 1)
        if self.module.freshness is not None:
            self.module.freshness.first_seen.copy_(first_seen(data.train.items, data.train.timestamps,
                                                              data.n_items))
            self.module.freshness.fit(self.histories)
        nxt = self.histories.items[:, 1:]
        counts = torch.bincount(nxt[nxt >= 0], minlength=data.n_items).double()
        self.positive_rate = counts / counts.sum().clamp(min=1)  # (N,) for logQ
        self.learners = torch.nonzero(self.histories.lengths >= 2).squeeze(1)  # users with a transition
        self.val_users, self.val_items = validation_sample(data, train.val_users, train.seed)
        self.n_val_users = len(self.val_users)
        # negatives and ID dropout draw from their own generator (the loop's permutes the users)
        draw_seed = int(np.random.SeedSequence([train.seed, 7]).generate_state(1)[0])
        self.draw = torch.Generator().manual_seed(draw_seed)
        self.train_feats = to_device(self.feats, device)

    def n_samples(self, epoch: int) -> int:
        return len(self.learners)

    def loss(self, net: nn.Module, epoch: int, idx: torch.Tensor, n_global: int, world: int) -> torch.Tensor:
        """The softmax (or BCE) loss of this rank's users ``idx``; under DDP each rank's mean is
        averaged (ranks hold different numbers of positions, so this differs from one process)."""
        batch = make_batch(self.histories, self.learners[idx], self.config.negatives,
                           self.config.id_dropout, self.positive_rate, self.draw)
        return net(self.train_feats, batch)

    def validate(self, module: nn.Module) -> float:
        return validation_ndcg(self.recommender(module, 0.0), self.data, self.val_users, self.val_items)

    def recommender(self, module: nn.Module, cold_offset: float) -> TwoTowerRecommender:
        return TwoTowerRecommender(module, self.feats, self.histories.trimmed(self.config.max_history),
                                   cold_offset, count_stats=self.stats)

    def save(self, module: nn.Module, out_dir: Path, meta: dict) -> None:
        """The best epoch's weights, with the cold offset chosen for them on validation."""
        offset, curve = choose_cold_offset(self.recommender(module, 0.0), self.data, self.select.cold_offset,
                                           self.yardstick)
        meta = {**meta, "cold_offset_curve": curve, "yardstick": asdict(self.yardstick)}
        checkpoint.save(out_dir, module, self.dims, self.stats, meta, extra={"cold_offset": offset})


def load_recommender(model_dir: Path, data: SplitData, embeddings_dir: Path,
                     name: str = "two_tower") -> TwoTowerRecommender:
    """A trained two-tower model behind the scoring interface, ready for the evaluator."""
    ckpt = checkpoint.load(model_dir, "two_tower", TwoTower, TwoTowerConfig)
    histories = Histories.build(data.train, data.n_users, ckpt.module.config.max_history)
    return TwoTowerRecommender(ckpt.module, ckpt.features(data, embeddings_dir), histories,
                               ckpt.extra["cold_offset"], name=name, count_stats=ckpt.count_stats)
