"""The six-token pair model (the poster's reference architecture, row ``fusion`` in every table):
six tokens per (user, item) pair, self-attention, an MLP to one logit.

    tokens = [e_user, e_item, e_tag, P·counts, P·text, P·image]     # (B, 6, D)
          -> L pre-LN self-attention blocks -> flatten -> MLP -> logit (B,)

Every token can be replaced by its learned "absent" vector. That one mechanism drops a modality
for an ablation (``modalities``), represents a missing cover / empty text / missing counts (never a
silent zero vector), and — with item-ID token dropout during training — lets items that nobody
clicked in training be scored from their content alone.

This file is the network; :mod:`pixrec.models.fusion` trains it (the task) and scores with it (the
recommender).
"""

from __future__ import annotations

import torch
from torch import nn

from pixrec.config import ConfigError, section
from pixrec.features import ItemFeatures
from pixrec.models.layers import Block, linear

TOKENS = ("user", "item", "tag", "counts", "text", "image")
USER, ITEM, TAG, COUNTS, TEXT, IMAGE = range(6)


@section
class FusionConfig:
    """``fusion.model`` in params.yaml."""

    dim: int
    heads: int
    layers: int
    dropout: float
    item_token_dropout: float
    modalities: list[str]
    mlp_hidden: int

    def __post_init__(self) -> None:
        unknown = sorted(set(self.modalities) - set(TOKENS))
        if unknown:
            raise ConfigError(f"fusion.model.modalities: unknown token(s) {unknown}; "
                              f"valid are {list(TOKENS)}")
        if min(self.dim, self.heads, self.layers, self.mlp_hidden) < 1 or self.dim % self.heads:
            raise ConfigError(f"fusion.model: dim, heads, layers and mlp_hidden must be >= 1 and dim "
                              f"divisible by heads, got dim={self.dim} heads={self.heads}")
        if not 0.0 <= self.item_token_dropout < 1.0 or not 0.0 <= self.dropout < 1.0:
            raise ConfigError("fusion.model.dropout and fusion.model.item_token_dropout must be in [0, 1)")


class FusionModel(nn.Module):
    """The six tokens of a (user, item) pair (:meth:`user_tokens`, :meth:`item_tokens`), the attention
    stack and MLP head over them (:meth:`fuse`; :meth:`infer` for scoring), a batch's logits
    (:meth:`forward`)."""

    def __init__(
        self,
        config: FusionConfig,
        n_users: int,
        n_items: int,
        n_tags: int,
        n_count_features: int,
        d_text: int,
        d_image: int,
    ) -> None:
        super().__init__()
        self.config = config
        d = config.dim
        self.user_emb = nn.Embedding(n_users, d)
        self.item_emb = nn.Embedding(n_items, d)
        self.tag_emb = nn.Embedding(n_tags + 1, d)  # row 0 (no tag) is never used: absent instead
        self.counts_proj = nn.Linear(n_count_features, d)
        self.text_proj = nn.Linear(d_text, d)  # inputs arrive row-normalised (features.py)
        self.image_proj = nn.Linear(d_image, d)
        # the user token also carries the user's content history, under the text/image switches
        self.user_text_proj = nn.Linear(d_text, d)
        self.user_image_proj = nn.Linear(d_image, d)
        self.absent = nn.Parameter(torch.randn(len(TOKENS), d) * 0.02)
        self.position = nn.Parameter(torch.randn(len(TOKENS), d) * 0.02)
        self.blocks = nn.ModuleList(Block(d, config.heads, config.dropout) for _ in range(config.layers))
        self.ln_f = nn.LayerNorm(d)
        self.head = nn.Sequential(
            nn.Linear(len(TOKENS) * d, config.mlp_hidden), nn.GELU(), nn.Dropout(config.dropout),
            nn.Linear(config.mlp_hidden, 1),
        )
        active = torch.tensor([name in config.modalities for name in TOKENS])
        self.register_buffer("active", active, persistent=False)
        for emb in (self.user_emb, self.item_emb, self.tag_emb):
            nn.init.normal_(emb.weight, std=0.05)

    # --- tokens ---------------------------------------------------------------------------------
    def _use(self, slot: int, present: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        """``value`` (N, D) where ``present`` (N,) and the slot is active, else the absent vector."""
        keep = present & self.active[slot]
        return torch.where(keep[:, None], value, self.absent[slot])

    def user_tokens(self, feats: ItemFeatures, users: torch.Tensor) -> torch.Tensor:  # (N,) -> (N, D)
        """User ID embedding plus projections of the user's training-history text and image means.

        A history part is included only where its modality is active and the user has a usable
        item (else nothing is added); the whole token is the absent vector if ``user`` is ablated.
        """
        tok = self.user_emb(users)
        for slot, hist, mask, proj in (
            (TEXT, feats.user_text, feats.user_text_mask, self.user_text_proj),
            (IMAGE, feats.user_image, feats.user_image_mask, self.user_image_proj),
        ):
            if hist is not None and bool(self.active[slot]):
                tok = tok + proj(hist[users]) * mask[users, None]
        ones = torch.ones_like(users, dtype=torch.bool)
        return self._use(USER, ones, tok) + self.position[USER]

    def item_tokens(self, feats: ItemFeatures, items: torch.Tensor) -> torch.Tensor:
        """Item-side tokens (N,) -> (N, 5, D): item ID (absent for items unseen in training), tag,
        counts, text, image — each absent where its input is missing or the token is ablated."""
        tag = feats.tag[items]
        toks = torch.stack(
            [
                self._use(ITEM, feats.known[items], self.item_emb(items)),
                self._use(TAG, tag > 0, self.tag_emb(tag)),
                self._use(COUNTS, feats.counts_mask[items], self.counts_proj(feats.counts[items])),
                self._use(TEXT, feats.text_mask[items], self.text_proj(feats.text[items])),
                self._use(IMAGE, feats.image_mask[items], self.image_proj(feats.image[items])),
            ],
            dim=1,
        )
        return toks + self.position[1:]

    # --- fusion ---------------------------------------------------------------------------------
    def fuse(self, user_tok: torch.Tensor, item_tok: torch.Tensor) -> torch.Tensor:
        """user_tok (B, D), item_tok (B, 5, D) -> logits (B,): the training path (scoring uses
        :meth:`infer` on tokens and first-block projections computed once per user / item)."""
        x = torch.cat([user_tok[:, None, :], item_tok], dim=1)  # (B, 6, D)
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln_f(x).flatten(1)).squeeze(-1)

    def infer(self, x: torch.Tensor, qkv: torch.Tensor) -> torch.Tensor:
        """:meth:`fuse` for scoring, from the six tokens x (B, 6, D) and the first block's projection
        of them qkv (B, 6, 3D) -> logits (B,); eval mode only (:meth:`Block.infer`)."""
        for n, block in enumerate(self.blocks):
            x = block.infer(x, qkv if n == 0 else None)
        fc1, act, _, fc2 = self.head
        return linear(fc2, act(linear(fc1, self.ln_f(x).flatten(1)))).squeeze(-1)

    def forward(
        self, users: torch.Tensor, items: torch.Tensor, feats: ItemFeatures, item_dropout: bool = False
    ) -> torch.Tensor:
        """users (B,), items (B,) -> logits (B,). ``item_dropout`` applies item-ID token dropout.

        Item-side tokens are computed once per distinct item of the batch, then gathered.
        """
        uniq, inverse = torch.unique(items, return_inverse=True)
        item_tok = self.item_tokens(feats, uniq)[inverse]  # (B, 5, D)
        if item_dropout and self.config.item_token_dropout > 0:
            drop = torch.rand(items.shape) < self.config.item_token_dropout
            absent = self.absent[ITEM] + self.position[ITEM]
            item_tok = torch.cat(
                [torch.where(drop[:, None], absent, item_tok[:, 0])[:, None], item_tok[:, 1:]], dim=1
            )
        return self.fuse(self.user_tokens(feats, users), item_tok)
