"""TwoTower: pixrec's flagship. A multimodal item tower and a sequential user tower, scored by a dot
product, so exact full ranking is one matrix product.

    item i     tokens [e_item, e_tag, P·text, P·image] (+ P·counts: the leak ablation only)   (N, T, D)
               -> self-attention over the item's own tokens -> mean -> LayerNorm -> v_i       (N, D)
                  (``pooling: mean``: no self-attention, the tokens' mean)
    user u     the last L training items v_j (+ a learned recency position)                  (B, L, D)
               -> causal self-attention -> state at the last position h_u                    (B, D)
    score      h_u · v_i + b[age bucket of item i at the user's last training timestamp]     (B, N)

Why each part:
- A dot product, not an MLP over the pair: a tuned dot product beats learned similarity (Rendle et al.,
  RecSys 2020), and ranking every item is a matmul (faiss / torch top-k), validation included.
- Softmax over many negatives (the batch's positives + a shared uniform sample) with logQ correction
  (Yi et al., RecSys 2019; Klenitskiy & Vasilev, RecSys 2023), not BCE over a few: ``pixrec.losses``.
- Every position of the time-ordered history predicts the next item (SASRec, Kang & McAuley, ICDM 2018).
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

This file is the network; :mod:`pixrec.models.two_tower` trains it (batches, the task) and scores
with it (the recommender).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from pixrec.config import ConfigError, section
from pixrec.features import ItemFeatures
from pixrec.histories import Histories
from pixrec.losses import LOSSES
from pixrec.models.layers import Block

ITEM_TOKENS = ("item", "tag", "counts", "text", "image")
ITEM, TAG, COUNTS, TEXT, IMAGE = range(len(ITEM_TOKENS))
POOLINGS = ("attention", "mean")  # how an item's tokens become one vector
NEVER = np.iinfo(np.int64).max  # first-seen time of an item with no training interaction


@section
class TwoTowerConfig:
    """``two_tower.model`` in params.yaml."""

    dim: int
    heads: int
    item_layers: int  # self-attention blocks over an item's tokens (pooling: attention)
    user_layers: int  # causal self-attention blocks over the history
    max_history: int  # last L training items of a user
    dropout: float
    id_dropout: float  # share of items whose ID token is hidden in a training step
    tokens: list[str]  # item-side tokens, of ITEM_TOKENS; "counts" reads lifetime counts (a leak)
    pooling: str  # attention | mean
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
        if self.pooling not in POOLINGS:
            raise ConfigError(f"{where}.pooling must be one of {list(POOLINGS)}, got {self.pooling!r}")
        if self.loss not in LOSSES:
            raise ConfigError(f"{where}.loss must be one of {LOSSES.names()}, got {self.loss!r}")
        if not 0.0 <= self.id_dropout < 1.0 or not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"{where}: dropout and id_dropout must be in [0, 1)")
        if min(self.max_history, self.negatives + 1, self.age_buckets + 1, self.user_layers + 1) < 1:
            raise ConfigError(f"{where}: max_history >= 1; negatives, age_buckets, user_layers >= 0")


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


@dataclass
class SeqBatch:
    """One training step's tensors, the input of :meth:`TwoTower.forward`; drawn outside the module
    (:func:`pixrec.models.two_tower.make_batch`), so a DDP wrapper's forward receives plain tensors."""

    inputs: torch.Tensor  # (B, T) item indices, -1 = padding: history positions 0..T-1
    valid: torch.Tensor  # (B, T) bool: the position and its next item both exist
    when: torch.Tensor  # (P,) query time of each valid position (its own timestamp)
    candidates: torch.Tensor  # (C,) sorted distinct items: every positive and the shared negatives
    target: torch.Tensor  # (P,) column of each valid position's next item in ``candidates``
    log_q: torch.Tensor  # (C,) log expected count of each candidate in the sampled set
    need: torch.Tensor  # (M,) sorted distinct items whose vectors the step needs
    show_id: torch.Tensor  # (M,) bool: the item's ID token is visible this step (ID dropout)


class TwoTower(nn.Module):
    """The two towers (:meth:`item_vectors`, :meth:`user_states`) and the training loss over a
    :class:`SeqBatch` (:meth:`forward`); sizes are the catalogue's and the input embeddings'."""

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
                         for k, (v, p) in enumerate(zip(values, present, strict=True))], dim=1)  # (N, T, D)
        x = x + self.kind  # (N, T, D): T = len(ITEM_TOKENS), the inactive ones absent
        if self.config.pooling == "attention":
            for block in self.item_blocks:
                x = block(x)
        return self.item_ln(x.mean(dim=1))

    # --- user tower -----------------------------------------------------------------------------
    def user_states(self, history: torch.Tensor, vectors: torch.Tensor) -> torch.Tensor:
        """history (B, T) item indices, -1 = padding (left); vectors (B, T, D) their item vectors
        -> (B, T, D): position t's state has seen history[:, :t+1] only (causal)."""
        t = history.shape[1]
        pad = history < 0
        x = vectors.masked_fill(pad[..., None], 0.0) + self.position[-t:]  # (B, T, D)
        causal = torch.ones(t, t, dtype=torch.bool).tril()  # (T, T)
        # padding is never attended to; a padding query attends to itself so no row is all -inf
        allow = (causal & ~pad[:, None, :]) | torch.eye(t, dtype=torch.bool)  # (B, T, T)
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
            logits = logits + self.freshness(batch.when, batch.candidates)  # (P, C)
        return LOSSES.get(self.config.loss)(logits, batch.target, batch.log_q if self.config.logq else None)
