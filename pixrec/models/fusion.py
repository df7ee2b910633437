"""The six-token pair model (the poster's reference architecture, row ``fusion`` in every table):
six tokens per (user, item) pair, self-attention, an MLP to one logit.

    tokens = [e_user, e_item, e_tag, P·counts, P·text, P·image]     # (B, 6, D)
          -> L pre-LN self-attention blocks -> flatten -> MLP -> logit (B,)

Every token can be replaced by its learned "absent" vector. That one mechanism drops a modality
for an ablation (``modalities``), represents a missing cover / empty text / missing counts (never a
silent zero vector), and — with item-ID token dropout during training — lets items that nobody
clicked in training be scored from their content alone.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pixrec.config import ConfigError, section
from pixrec.data.dataset import SplitData
from pixrec.errors import InputError
from pixrec.features import CountStats, Embeddings, ItemFeatures, build_item_features, count_stats, to_device
from pixrec.models.layers import Block, linear
from pixrec.numerics import environment
from pixrec.training import TrainConfig, validation_ndcg, validation_sample

TOKENS = ("user", "item", "tag", "counts", "text", "image")
USER, ITEM, TAG, COUNTS, TEXT, IMAGE = range(6)
CHECKPOINT = "model.pt"
META = "meta.json"


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


@section
class FusionSection:
    """The ``fusion`` section of params.yaml."""

    model: FusionConfig
    train: TrainConfig


class FusionModel(nn.Module):
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


class FusionRecommender:
    """The scoring interface (:class:`pixrec.scoring.Recommender`) over a trained model.

    Everything token-wise is computed once, not once per pair: the item tokens of the whole
    catalogue and their first-block QKV projections at construction, the user tokens and theirs once
    per call. Only the attention stack runs per pair (:meth:`FusionModel.infer`), ~``pairs_per_batch``
    pairs at a time (small enough that a chunk's activations stay in cache: 2,048 pairs measured
    ~1.4x faster than 8,192). ``score_all`` builds each chunk's item-side tokens once and only
    overwrites the user slot for each user, so no per-pair gather or concatenation remains.
    """

    def __init__(
        self, model: FusionModel, feats: ItemFeatures, name: str = "fusion",
        pairs_per_batch: int = 2048,
    ) -> None:
        self.model = model.eval()
        self.feats = feats
        self.name = name
        self.n_items = feats.n_items
        self.pairs_per_batch = pairs_per_batch
        with torch.inference_mode():
            self.item_table = model.item_tokens(feats, torch.arange(self.n_items))  # (I, 5, D)
            self.item_qkv = model.blocks[0].project(self.item_table)  # (I, 5, 3D)

    def _users(self, users: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """users (U,) -> their token (U, D) and its first-block projection (U, 3D)."""
        tok = self.model.user_tokens(self.feats, users)
        return tok, self.model.blocks[0].project(tok)

    @torch.inference_mode()
    def _score_pairs(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        uniq, inverse = torch.unique(users, return_inverse=True)
        user_tok, user_qkv = self._users(uniq)  # (U', D), (U', 3D)
        out = torch.empty(users.shape[0])
        for s in range(0, users.shape[0], self.pairs_per_batch):
            u, i = inverse[s : s + self.pairs_per_batch], items[s : s + self.pairs_per_batch]
            x = torch.cat([user_tok[u, None], self.item_table[i]], dim=1)  # (P, 6, D)
            qkv = torch.cat([user_qkv[u, None], self.item_qkv[i]], dim=1)  # (P, 6, 3D)
            out[s : s + len(u)] = self.model.infer(x, qkv)
        return out

    def score(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """users (B,), items (B, C) -> float32 (B, C)."""
        b, c = items.shape
        u = torch.from_numpy(np.repeat(np.asarray(users, dtype=np.int64), c))
        i = torch.from_numpy(np.asarray(items, dtype=np.int64).ravel())
        return self._score_pairs(u, i).view(b, c).numpy().astype(np.float32, copy=False)

    @torch.inference_mode()
    def score_all(self, users: np.ndarray) -> np.ndarray:
        """users (B,) -> float32 (B, n_items).

        The catalogue in ``ceil(n_items / pairs_per_batch)`` even slices; a slice's tokens are laid
        out once, ``per`` copies deep when it is smaller than a chunk, and each group of ``per`` users
        writes only its user slot (row 0) before the stack runs on the whole buffer.
        """
        user_tok, user_qkv = self._users(torch.from_numpy(np.asarray(users, dtype=np.int64)))
        n_users, n_items = len(users), self.n_items
        k = -(-n_items // self.pairs_per_batch)
        edges = [n_items * c // k for c in range(k + 1)]
        per = max(1, self.pairs_per_batch // n_items)  # users scored per call (small catalogues)
        out = torch.empty(n_users, n_items)
        for s, e in itertools.pairwise(edges):
            n, g = e - s, max(1, min(per, n_users))
            x = torch.cat([self.item_table[s:e, :1], self.item_table[s:e]], dim=1).repeat(g, 1, 1)
            qkv = torch.cat([self.item_qkv[s:e, :1], self.item_qkv[s:e]], dim=1).repeat(g, 1, 1)
            for r in range(0, n_users, g):
                m = min(g, n_users - r)
                x[: m * n, 0] = user_tok[r : r + m].repeat_interleave(n, dim=0)
                qkv[: m * n, 0] = user_qkv[r : r + m].repeat_interleave(n, dim=0)
                out[r : r + m, s:e] = self.model.infer(x[: m * n], qkv[: m * n]).view(m, n)
        return out.numpy()


def save_model(
    model: FusionModel, stats: CountStats, dims: dict, out_dir: Path, meta: dict
) -> None:
    """Checkpoint (weights + everything needed to rebuild the model) and a readable meta.json."""
    out_dir = Path(out_dir)
    torch.save(
        {"state_dict": model.state_dict(), "config": asdict(model.config), "dims": dims,
         "count_stats": asdict(stats)},
        out_dir / CHECKPOINT,
    )
    meta = {**meta, "config": asdict(model.config), "dims": dims, "numerics": environment()}
    (out_dir / META).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")


def load_model(model_dir: Path) -> tuple[FusionModel, CountStats]:
    path = Path(model_dir) / CHECKPOINT
    if not path.is_file():
        raise InputError(f"{path}: no checkpoint; run dvc repro train-fusion")
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    model = FusionModel(FusionConfig(**ckpt["config"]), **ckpt["dims"])
    model.load_state_dict(ckpt["state_dict"])
    return model.eval(), CountStats(**ckpt["count_stats"])


def load_recommender(model_dir: Path, data, embeddings_dir: Path, name: str = "fusion") -> FusionRecommender:
    """The trained fusion model behind the scoring interface, ready for the evaluator."""
    from pixrec.features import build_item_features, load_embeddings

    model, stats = load_model(model_dir)
    feats = build_item_features(data, load_embeddings(embeddings_dir, data.n_items), stats)
    return FusionRecommender(model, feats, name=name)


class FusionTask:
    """Training the pair model (:class:`pixrec.training.Task`): BCE on every training positive and
    that epoch's materialised negatives (the negative-sample stage), samples sliced from tensors
    already in memory; validation ranks a seeded user sample's valid item against every item."""

    def __init__(self, data: SplitData, embeddings: dict[str, Embeddings], negatives: np.ndarray,
                 config: FusionConfig, train: TrainConfig, device: torch.device) -> None:
        if train.epochs > negatives.shape[0]:
            raise InputError(f"fusion.train.epochs={train.epochs} but the negative-sample stage "
                             f"materialised only {negatives.shape[0]} epochs: raise negatives.epochs")
        if negatives.shape[1] != len(data.train):
            raise InputError("negatives do not match the training split; re-run negative-sample")
        torch.manual_seed(train.seed)  # init, dropout and token dropout draw from torch's default RNG
        self.data, self.negatives, self.device = data, negatives, device
        self.stats = count_stats(data)
        self.feats = build_item_features(data, embeddings, self.stats)
        self.dims = {"n_users": data.n_users, "n_items": data.n_items, "n_tags": int(data.item_tags.max()),
                     "n_count_features": int(self.feats.counts.shape[1]),
                     "d_text": int(self.feats.text.shape[1]), "d_image": int(self.feats.image.shape[1])}
        self.module = FusionModel(config, **self.dims)  # same init on every rank (same seed)
        self.train_feats = to_device(self.feats, device)
        pos_u = torch.from_numpy(data.train.users.astype(np.int64))
        self.pos_i = torch.from_numpy(data.train.items.astype(np.int64))
        k = negatives.shape[2]
        self.users = torch.cat([pos_u, pos_u.repeat_interleave(k)]).to(device)
        self.labels = torch.cat([torch.ones(len(pos_u)), torch.zeros(len(pos_u) * k)]).to(device)
        self.val_users, self.val_items = validation_sample(data, train.val_users, train.seed)
        self.n_val_users = len(self.val_users)
        self._items: tuple[int, torch.Tensor] | None = None

    def n_samples(self, epoch: int) -> int:
        return len(self.labels)

    def items(self, epoch: int) -> torch.Tensor:
        """(n_samples,) the positives, then that epoch's negatives, on the device (built once per epoch)."""
        if self._items is None or self._items[0] != epoch:
            negs = torch.from_numpy(self.negatives[epoch].astype(np.int64)).ravel()
            self._items = (epoch, torch.cat([self.pos_i, negs]).to(self.device))
        return self._items[1]

    def loss(self, net: nn.Module, epoch: int, idx: torch.Tensor, n_global: int, world: int) -> torch.Tensor:
        """BCE over the samples ``idx`` with item-token dropout; under DDP the batch sum times
        ``world / n_global``, so DDP's average over ranks is the global batch's mean."""
        idx = idx.to(self.device)
        logits = net(self.users[idx], self.items(epoch)[idx], self.train_feats, item_dropout=True)
        if world == 1:
            return F.binary_cross_entropy_with_logits(logits, self.labels[idx])
        summed = F.binary_cross_entropy_with_logits(logits, self.labels[idx], reduction="sum")
        return summed * (world / n_global)

    def validate(self, module: nn.Module) -> float:
        rec = FusionRecommender(module, self.feats)
        return validation_ndcg(rec, self.data, self.val_users, self.val_items)

    def save(self, module: nn.Module, out_dir: Path, meta: dict) -> None:
        save_model(module, self.stats, self.dims, out_dir, meta)
