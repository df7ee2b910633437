"""SASRec (Kang & McAuley, ICDM 2018): an ID-only sequential baseline over each user's time-ordered
*training* history — the PixelRec benchmark's own strongest family.

A stack of pre-LayerNorm causal self-attention blocks over the item-ID embeddings of the last
``max_len`` training items (left-padded), plus learned position embeddings counted back from the
last item (so the same history gets the same positions however much padding surrounds it). The
hidden state at the last position scores every item by a dot product with the (shared) item
embedding table.

Loss: softmax cross-entropy of the next item at every position, over the whole catalogue when
``negatives`` is 0 (Klenitskiy & Vasilev, RecSys 2023: full-softmax SASRec beats the original BCE
with one sampled negative, and on a few thousand items it costs little), or over the positive and
``negatives`` uniformly sampled items shared by the batch (for catalogues where full logits per
position are too costly, e.g. PixelRec50K on a CPU). Items without a training interaction never
appear as inputs or targets: unrankable (-inf), as for every ID-only model.

Deterministic on CPU: parameters and dropout draw from torch's generator seeded inside a forked RNG
state (nothing leaks out), batches from an explicit ``torch.Generator``, deterministic kernels on.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pixrec.baselines.base import BASELINES, Baseline, FitContext
from pixrec.errors import InputError
from pixrec.histories import Histories
from pixrec.numerics import deterministic_kernels


class Block(nn.Module):
    """x + attention(LN(x)), then x + FFN(LN(x)); ``allowed`` (B, 1, T, T) bool: query may see key.

    Not :class:`pixrec.models.layers.Block`: SASRec's FFN is dim wide with a dropout inside and its
    attention is ``scaled_dot_product_attention``, so sharing that block would change its weights."""

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.ffn = nn.Sequential(nn.Linear(dim, dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(dim, dim))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:  # (B, T, D)
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)  # (B, H, T, Dh)
        x = x + self.drop(self.proj(a.transpose(1, 2).reshape(b, t, d)))
        return x + self.drop(self.ffn(self.ln2(x)))


class SASRecNet(nn.Module):
    """Item ids (B, T), 0 = left padding -> hidden states (B, T, D); position t sees items <= t."""

    def __init__(self, n_items: int, dim: int, heads: int, layers: int, max_len: int, dropout: float):
        super().__init__()
        self.items = nn.Embedding(n_items + 1, dim, padding_idx=0)  # row i + 1 = item_idx i
        self.pos = nn.Embedding(max_len, dim)  # row j = j steps before the last position
        self.blocks = nn.ModuleList(Block(dim, heads, dropout) for _ in range(layers))
        self.norm, self.drop = nn.LayerNorm(dim), nn.Dropout(dropout)
        self.scale = math.sqrt(dim)
        for table in (self.items, self.pos):  # small start: logits of order 1, not of order dim
            nn.init.normal_(table.weight, std=0.02)
        with torch.no_grad():
            self.items.weight[0] = 0.0

    def forward(self, seq: torch.Tensor) -> torch.Tensor:
        t = seq.shape[1]
        back = torch.arange(t - 1, -1, -1, device=seq.device)  # (T,) distance from the last position
        x = self.drop(self.items(seq) * self.scale + self.pos(back))  # (B, T, D)
        causal = torch.ones(t, t, dtype=torch.bool, device=seq.device).tril()
        allowed = causal & (seq != 0)[:, None, :]  # (B, T, T): no future, no padding
        allowed |= torch.eye(t, dtype=torch.bool, device=seq.device)  # padded queries see themselves
        for block in self.blocks:
            x = block(x, allowed[:, None])
        return self.norm(x)

    def item_table(self) -> torch.Tensor:
        return self.items.weight[1:]  # (I, D)


@contextlib.contextmanager
def _torch_scope(threads: int, seed: int) -> Iterator[None]:
    """Own threads, deterministic kernels and a forked global RNG seeded with ``seed``; all restored."""
    old_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with deterministic_kernels(), torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            yield
    finally:
        torch.set_num_threads(old_threads)


def next_item_loss(net: SASRecNet, seq: torch.Tensor, negatives: int, gen: torch.Generator) -> torch.Tensor:
    """Softmax CE of item t+1 at every non-padded position t of ``seq`` (B, T+1)."""
    inputs, targets = seq[:, :-1], seq[:, 1:]
    used = (inputs != 0) & (targets != 0)
    h = net(inputs)[used]  # (P, D)
    target = targets[used] - 1  # (P,) item_idx
    table = net.item_table()  # (I, D)
    if negatives == 0:
        return F.cross_entropy(h @ table.T, target)  # (P, I) logits
    neg = torch.randint(0, table.shape[0], (negatives,), generator=gen)  # shared by the batch
    logits = torch.cat([(h * table[target]).sum(-1, keepdim=True), h @ table[neg].T], dim=1)  # (P, 1+N)
    hit = torch.cat([torch.zeros(len(h), 1, dtype=torch.bool), neg[None, :] == target[:, None]], dim=1)
    return F.cross_entropy(logits.masked_fill(hit, float("-inf")), torch.zeros(len(h), dtype=torch.long))


def length_batches(lengths: torch.Tensor, batch_size: int, gen: torch.Generator) -> list[torch.Tensor]:
    """One epoch's batches of row indices: a seeded shuffle, then rows of similar length batched
    together within windows of 16 batches (padding costs compute), batches in seeded order."""
    batches: list[torch.Tensor] = []
    for window in torch.randperm(len(lengths), generator=gen).split(16 * batch_size):
        batches += window[torch.argsort(lengths[window], stable=True)].split(batch_size)
    return [batches[j] for j in torch.randperm(len(batches), generator=gen)]


@BASELINES.register("sasrec")
class SASRec(Baseline):
    """The model above, trained with Adam for ``epochs`` on every user's last ``max_len`` + 1 items."""

    def __init__(
        self, ctx: FitContext, rng: np.random.Generator, *, dim: int, heads: int, layers: int,
        dropout: float, max_len: int, epochs: int, lr: float, batch_size: int, negatives: int, threads: int,
    ) -> None:
        where = f"{ctx.where}.sasrec"
        if min(dim, heads, layers, max_len, epochs, batch_size, threads) < 1 or dim % heads or negatives < 0:
            raise InputError(f"{where}: dim, heads, layers, max_len, epochs, batch_size and threads must "
                             f"be >= 1 with dim divisible by heads, negatives >= 0")
        data = ctx.data
        self.n_items, self.unrankable = data.n_items, data.cold_items
        # item_idx + 1, 0 = left padding: (U, L+1) the last max_len + 1 training items
        seqs = Histories.build(data.train, data.n_users, max_len + 1).items + 1
        seed = int(rng.integers(2**31 - 1))
        with _torch_scope(threads, seed):
            self.net = SASRecNet(data.n_items, dim, heads, layers, max_len, dropout)
            self._train(seqs[(seqs != 0).sum(1) >= 2], epochs, lr, batch_size, negatives, seed)
            self.user_vectors = self.encode(seqs[:, 1:]).numpy()  # (U, D): the last max_len items
            self.item_vectors = self.net.item_table().detach().numpy().copy()  # (I, D)

    def _train(self, seqs: torch.Tensor, epochs: int, lr: float, batch_size: int, negatives: int,
               seed: int) -> None:
        gen = torch.Generator().manual_seed(seed)
        opt = torch.optim.Adam(self.net.parameters(), lr=lr)
        lengths = (seqs != 0).sum(1)  # (N,)
        self.net.train()
        for _ in range(epochs):
            for idx in length_batches(lengths, batch_size, gen):
                batch = seqs[idx][:, -int(lengths[idx].max()):]  # (b, longest): less padding
                loss = next_item_loss(self.net, batch, negatives, gen)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        self.net.eval()

    @torch.no_grad()
    def encode(self, seqs: torch.Tensor, batch: int = 1024) -> torch.Tensor:
        """(U, T) item ids -> (U, D) hidden state at the last position (eval mode)."""
        return torch.cat([self.net(seqs[s : s + batch])[:, -1] for s in range(0, len(seqs), batch)])

    def score_all(self, users: np.ndarray) -> np.ndarray:
        return self._finish(self.user_vectors[np.asarray(users)] @ self.item_vectors.T)  # (B, I)
