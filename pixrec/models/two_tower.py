"""TwoTower: pixrec's flagship. A multimodal item tower and a sequential user tower, scored by a dot
product, so exact full ranking is one matrix product.

    item i     tokens [e_item, e_tag, P·text, P·image] (+ P·counts: the leak ablation only)   (N, T, D)
               -> self-attention over the item's own tokens -> mean -> LayerNorm -> v_i       (N, D)
    user u     the last L training items v_j (+ a learned recency position)                  (B, L, D)
               -> causal self-attention -> state at the last position h_u                    (B, D)
    score      h_u · v_i + b[age bucket of item i at the user's last training timestamp]     (B, N)

Why each part (see ../shared/field-notes.md):
- A dot product, not an MLP over the pair: a tuned dot product beats learned similarity (Rendle et al.,
  RecSys 2020), and ranking every item is a matmul (faiss / torch top-k), validation included.
- Softmax over many negatives (the batch's positives + a shared uniform sample) with logQ correction
  (Yi et al., RecSys 2019; Klenitskiy & Vasilev, RecSys 2023), not BCE over a few: ``pixrec.losses``.
- Every position of the time-ordered history predicts the next item (SASRec, Kang & McAuley 2018).
- Item-ID dropout (DropoutNet, Volkovs et al., NeurIPS 2017): during training the ID token of a share
  of the items is replaced by its "absent" vector, so the content tokens learn to stand in for it.
  An item with no training interaction is never given its ID token: its ID vector was never trained.
  Warm items keep their ID (ALDI, Huang et al., SIGIR 2023): only cold items use the content path.
- Freshness: an additive bias per bucket of the item's age — the user's last training timestamp minus
  the item's first *training* interaction, bucket 0 = "not seen in training before then" (YouTube DNN's
  example age, Covington et al., RecSys 2016). In training the query time is the timestamp of the
  last input position, so every training example sees only what was seen before it; items never seen
  in training fall in bucket 0 at evaluation, where the model learned how often a next item is new.
Nothing here reads lifetime counts unless ``tokens`` asks for ``counts`` (a labelled leak).
"""

from __future__ import annotations

import copy
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from pixrec.config import ConfigError, from_mapping, section
from pixrec.data.dataset import SplitData
from pixrec.errors import InputError
from pixrec.features import (
    CountStats,
    Embeddings,
    ItemFeatures,
    build_item_features,
    count_stats,
    load_embeddings,
    to_device,
)
from pixrec.losses import LOSSES
from pixrec.models.cold_lift import Yardstick, choose_cold_offset
from pixrec.models.histories import Histories
from pixrec.models.layers import Block
from pixrec.numerics import environment
from pixrec.training import TrainConfig, validation_ndcg, validation_sample

CHECKPOINT = "model.pt"
META = "meta.json"
ITEM_TOKENS = ("item", "tag", "counts", "text", "image")
ITEM, TAG, COUNTS, TEXT, IMAGE = range(len(ITEM_TOKENS))
FUSIONS = ("attention", "mean")
NEVER = np.iinfo(np.int64).max  # first-seen time of an item with no training interaction


@section
class TwoTowerConfig:
    """``two_tower.model`` in params.yaml."""

    dim: int
    heads: int
    item_layers: int  # self-attention blocks over an item's tokens (fusion: attention)
    user_layers: int  # causal self-attention blocks over the history
    max_history: int  # last L training items of a user
    dropout: float
    id_dropout: float  # share of items whose ID token is hidden in a training step
    tokens: list[str]  # item-side tokens, of ITEM_TOKENS; "counts" reads lifetime counts (a leak)
    fusion: str  # attention | mean
    age_buckets: int  # freshness bias buckets (0 = off)
    loss: str  # softmax | bce (pixrec.losses)
    negatives: int  # shared uniform negatives per training batch, beside the batch's positives
    logq: bool  # subtract log of each candidate's sampling rate (softmax only)
    scaled: bool  # divide the dot product by sqrt(dim)

    def __post_init__(self) -> None:
        where = "two_tower.model"
        if unknown := sorted(set(self.tokens) - set(ITEM_TOKENS)):
            raise ConfigError(f"{where}.tokens: unknown {unknown}; valid are {list(ITEM_TOKENS)}")
        if self.dim % self.heads:
            raise ConfigError(f"{where}.dim={self.dim} must be divisible by heads={self.heads}")
        if self.fusion not in FUSIONS:
            raise ConfigError(f"{where}.fusion must be one of {list(FUSIONS)}, got {self.fusion!r}")
        if self.loss not in LOSSES:
            raise ConfigError(f"{where}.loss must be one of {LOSSES.names()}, got {self.loss!r}")
        if not 0.0 <= self.id_dropout < 1.0 or not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"{where}: dropout and id_dropout must be in [0, 1)")
        if min(self.max_history, self.negatives + 1, self.age_buckets + 1, self.user_layers + 1) < 1:
            raise ConfigError(f"{where}: max_history >= 1; negatives, age_buckets, user_layers >= 0")


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


class _BucketBias(torch.autograd.Function):
    """``bias[buckets]`` whose backward is one bincount: the default gather backward accumulates
    into 17 rows from millions of (position, candidate) cells, slowly under deterministic kernels."""

    @staticmethod
    def forward(ctx, bias: torch.Tensor, buckets: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(buckets)
        ctx.n = bias.shape[0]
        return bias[buckets.int()]  # a uint8 index would be read as a mask

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        (buckets,) = ctx.saved_tensors
        total = torch.bincount(buckets.reshape(-1), weights=grad.reshape(-1).double(), minlength=ctx.n)
        return total.to(grad.dtype), None


class Freshness(nn.Module):
    """A learned bias per item-age bucket at a query time, from training interactions only.

    ``first_seen`` (N,) int64 is each item's first training timestamp (int64 max when it has none);
    bucket 0 = not seen in training before the query time (which includes every cold item), buckets
    1..K split the ages of the training transitions' next items into equal shares (``fit``).
    """

    def __init__(self, first_seen: torch.Tensor, n_buckets: int) -> None:
        super().__init__()
        self.register_buffer("first_seen", first_seen)
        self.register_buffer("edges", torch.zeros(max(n_buckets - 1, 0), dtype=torch.int64))
        self.bias = nn.Parameter(torch.zeros(n_buckets + 1))

    def fit(self, histories: Histories) -> None:
        """Bucket edges (seconds): age quantiles over every (query time, next item) pair."""
        items, times = histories.items, histories.times
        ok = (items[:, :-1] >= 0) & (items[:, 1:] >= 0)
        age = times[:, :-1][ok] - self.first_seen[items[:, 1:][ok]]
        age = age[age >= 0].double()
        q = torch.linspace(0, 1, len(self.edges) + 2, dtype=torch.float64)[1:-1]
        self.edges.copy_(torch.quantile(age, q).ceil().long() if len(age) else torch.zeros_like(self.edges))

    def bucket(self, when: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Broadcastable query times and item indices -> bucket indices (long): the definition,
        which :meth:`grid` computes faster."""
        age = when - self.first_seen[items]
        return torch.where(age < 0, 0, 1 + torch.bucketize(age, self.edges))

    def grid(self, when: torch.Tensor, first: torch.Tensor) -> torch.Tensor:
        """Query times (P,) x first-seen times (C,) -> (P, C) uint8 buckets, equal to :meth:`bucket`'s.

        A bucket counts the thresholds an item's age has passed: age >= 0, then age > each edge, i.e.
        ``when >= first + t`` for t in (0, edges + 1). Per item those are K+1 times; sorting the
        queries turns each into one row index, and a cumulative sum down the rows counts them: no
        (P, C) int64 age, compare or bucketize (about a third of a training step otherwise).
        """
        shift = torch.cat([self.edges.new_zeros(1), self.edges + 1])  # (K+1,) ascending
        limit = NEVER - shift  # first + shift saturates at NEVER (never reached: bucket 0)
        thresholds = torch.where(first[:, None] > limit, NEVER, first[:, None] + shift)  # (C, K+1)
        order = torch.argsort(when, stable=True)
        rows = torch.searchsorted(when[order], thresholds)  # (C, K+1): first sorted query past each
        counts = torch.zeros(len(when) + 1, len(first), dtype=torch.uint8)
        counts.scatter_add_(0, rows.T.contiguous(), torch.ones_like(rows.T, dtype=torch.uint8))
        rank = torch.empty_like(order)
        rank[order] = torch.arange(len(order))
        return counts.cumsum(0, dtype=torch.uint8)[rank]

    def forward(self, when: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Query times (P,), item indices (C,) -> (P, C) bias."""
        return _BucketBias.apply(self.bias, self.grid(when, self.first_seen[items]))

    def at(self, when: torch.Tensor, first: torch.Tensor) -> torch.Tensor:
        """(P, C): the bias at query times (P,) for items first seen at ``first`` (C,), for scoring
        items that need not be the training catalogue's (one never seen in training has first-seen
        ``NEVER``: bucket 0)."""
        return self.bias[self.grid(when, first).int()]


def first_seen(train_items: np.ndarray, train_times: np.ndarray, n_items: int) -> torch.Tensor:
    """(N,) int64: each item's first training timestamp; int64 max for an item with none."""
    out = np.full(n_items, NEVER, dtype=np.int64)
    np.minimum.at(out, train_items.astype(np.int64), train_times.astype(np.int64))
    return torch.from_numpy(out)


class TwoTower(nn.Module):
    def __init__(self, config: TwoTowerConfig, n_items: int, n_tags: int,
                 n_count_features: int, d_text: int, d_image: int) -> None:
        super().__init__()
        self.config = config
        d = config.dim
        self.item_emb = nn.Embedding(n_items, d)
        self.tag_emb = nn.Embedding(n_tags + 1, d)  # row 0 (no tag) is never used: absent instead
        self.counts_proj = nn.Linear(n_count_features, d)
        self.text_proj = nn.Linear(d_text, d)  # inputs arrive row-normalised (features.py)
        self.image_proj = nn.Linear(d_image, d)
        for emb in (self.item_emb, self.tag_emb):
            nn.init.normal_(emb.weight, std=0.02)
        self.absent = nn.Parameter(torch.randn(len(ITEM_TOKENS), d) * 0.02)
        self.kind = nn.Parameter(torch.randn(len(ITEM_TOKENS), d) * 0.02)  # which token is which
        self.item_blocks = nn.ModuleList(
            Block(d, config.heads, config.dropout) for _ in range(config.item_layers))
        self.item_ln = nn.LayerNorm(d)
        self.position = nn.Parameter(torch.randn(config.max_history, d) * 0.02)  # right-aligned
        self.user_blocks = nn.ModuleList(
            Block(d, config.heads, config.dropout) for _ in range(config.user_layers))
        self.user_ln = nn.LayerNorm(d)
        self.freshness = (Freshness(torch.zeros(n_items, dtype=torch.int64), config.age_buckets)
                          if config.age_buckets else None)
        # both towers end in a LayerNorm (unit-variance coordinates): a raw dot product would start with
        # logits of std sqrt(D) and a saturated softmax; scaled, they start near 1 and the norms learn
        self.logit_scale = config.dim ** -0.5 if config.scaled else 1.0
        active = torch.tensor([name in config.tokens for name in ITEM_TOKENS])
        self.register_buffer("active", active, persistent=False)

    # --- item tower -----------------------------------------------------------------------------
    def item_vectors(self, feats: ItemFeatures, items: torch.Tensor, show_id: torch.Tensor) -> torch.Tensor:
        """items (N,), show_id (N,) bool -> (N, D). The ID token is used only where ``show_id`` and
        the item has a training interaction; every missing input is its token's absent vector. Rows
        of ``feats`` need not be training items where the ID is hidden (new items: no ID row)."""
        tag, with_id = feats.tag[items], show_id & feats.known[items]
        values = (self.item_emb(torch.where(with_id, items, 0)), self.tag_emb(tag),
                  self.counts_proj(feats.counts[items]), self.text_proj(feats.text[items]),
                  self.image_proj(feats.image[items]))
        present = (with_id, tag > 0, feats.counts_mask[items], feats.text_mask[items],
                   feats.image_mask[items])
        x = torch.stack([torch.where((p & self.active[k])[:, None], v, self.absent[k])
                         for k, (v, p) in enumerate(zip(values, present, strict=True))], dim=1)
        x = x + self.kind  # (N, T, D)
        if self.config.fusion == "attention":
            for block in self.item_blocks:
                x = block(x)
        return self.item_ln(x.mean(dim=1))

    # --- user tower -----------------------------------------------------------------------------
    def user_states(self, history: torch.Tensor, vectors: torch.Tensor) -> torch.Tensor:
        """history (B, T) item indices, -1 = padding (left); vectors (B, T, D) their item vectors
        -> (B, T, D): position t's state has seen history[:, :t+1] only (causal)."""
        t = history.shape[1]
        pad = history < 0
        x = vectors.masked_fill(pad[..., None], 0.0) + self.position[-t:]
        causal = torch.ones(t, t, dtype=torch.bool).tril()
        # padding is never attended to; a padding query attends to itself so no row is all -inf
        allow = (causal & ~pad[:, None, :]) | torch.eye(t, dtype=torch.bool)
        for block in self.user_blocks:
            x = block(x, allow=allow)
        return self.user_ln(x)

    # --- training -------------------------------------------------------------------------------
    def forward(self, feats: ItemFeatures, batch: SeqBatch) -> torch.Tensor:
        """The batch's loss (scalar): every history position predicts the next item among the
        batch's candidates (its positives + the shared negatives)."""
        vec = self.item_vectors(feats, batch.need, batch.show_id)  # (M, D), one row per distinct item
        lookup = lambda idx: vec[torch.searchsorted(batch.need, idx)]  # noqa: E731  (idx in need)
        states = self.user_states(batch.inputs, lookup(batch.inputs.clamp(min=0)))[batch.valid]  # (P, D)
        logits = states @ lookup(batch.candidates).T * self.logit_scale  # (P, C)
        if self.freshness is not None:
            logits = logits + self.freshness(batch.when, batch.candidates)
        return LOSSES.get(self.config.loss)(logits, batch.target, batch.log_q if self.config.logq else None)


@dataclass
class SeqBatch:
    """One training step's tensors, drawn by :func:`make_batch` outside the module (so a DDP wrapper's
    forward receives plain tensors)."""

    inputs: torch.Tensor  # (B, T) item indices, -1 = padding: history positions 0..T-1
    valid: torch.Tensor  # (B, T) bool: the position and its next item both exist
    when: torch.Tensor  # (P,) query time of each valid position (its own timestamp)
    candidates: torch.Tensor  # (C,) sorted distinct items: every positive and the shared negatives
    target: torch.Tensor  # (P,) column of each valid position's next item in ``candidates``
    log_q: torch.Tensor  # (C,) log expected count of each candidate in the sampled set
    need: torch.Tensor  # (M,) sorted distinct items whose vectors the step needs
    show_id: torch.Tensor  # (M,) bool: the item's ID token is visible this step (ID dropout)


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
        self.dims = {"n_items": data.n_items, "n_tags": int(data.item_tags.max()),
                     "n_count_features": int(self.feats.counts.shape[1]),
                     "d_text": int(self.feats.text.shape[1]), "d_image": int(self.feats.image.shape[1])}
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
        torch.save({"state_dict": module.state_dict(), "config": asdict(module.config), "dims": self.dims,
                    "count_stats": asdict(self.stats), "cold_offset": offset}, Path(out_dir) / CHECKPOINT)
        meta = {**meta, "config": asdict(module.config), "dims": self.dims, "numerics": environment(),
                "cold_offset": offset, "cold_offset_curve": curve, "yardstick": asdict(self.yardstick)}
        (Path(out_dir) / META).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")


def load_recommender(model_dir: Path, data: SplitData, embeddings_dir: Path,
                     name: str = "two_tower") -> TwoTowerRecommender:
    """A trained two-tower model behind the scoring interface, ready for the evaluator."""
    path = Path(model_dir) / CHECKPOINT
    if not path.is_file():
        raise InputError(f"{path}: no checkpoint; run dvc repro train-two-tower")
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    config = from_mapping(TwoTowerConfig, ckpt["config"], "two_tower.model")
    model = TwoTower(config, **ckpt["dims"])
    model.load_state_dict(ckpt["state_dict"])
    stats = CountStats(**ckpt["count_stats"])
    feats = build_item_features(data, load_embeddings(embeddings_dir, data.n_items), stats)
    return TwoTowerRecommender(model, feats, Histories.build(data.train, data.n_users, config.max_history),
                               ckpt["cold_offset"], name=name, count_stats=stats)

