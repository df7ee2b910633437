"""The transformer block both models use: pre-LN self-attention + MLP, fused QKV projection.

Attention is two einsums in (B, T, H, Dh) layout: on CPU, for the few tokens these models attend over
(6 for the pair model, 4 for an item, <= max_history for a user), that is ~1.8x faster than
``scaled_dot_product_attention``, whose kernels are tuned for long sequences.

:meth:`Block.infer` is the same function for inference without a mask, laid out for the pair model's
exact scoring (millions of 6-token sequences): no einsum copies, softmax over a 12-wide inner axis,
biases added in place. Equal to ``forward`` up to float rounding; training keeps ``forward``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Block(nn.Module):
    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.ln1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.ln2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))
        self.drop = nn.Dropout(dropout)
        self.scale = (dim // heads) ** -0.5

    def project(self, x: torch.Tensor) -> torch.Tensor:
        """(..., D) -> (..., 3D): the token-wise LayerNorm + QKV projection of the attention input.

        Token-wise, so a scorer can compute it once per item and per user and pass it to :meth:`infer`.
        """
        return self.qkv(self.ln1(x))

    def forward(self, x: torch.Tensor, allow: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T, D) -> (B, T, D). ``allow`` (B, T, T) bool: query i may attend to key j (None: all)."""
        b, t, d = x.shape
        qkv = self.project(x)
        q, k, v = qkv.view(b, t, 3, self.heads, d // self.heads).unbind(2)
        w = torch.einsum("bihd,bjhd->bijh", q, k).mul(self.scale)  # (B, T, T, H)
        if allow is not None:
            w = w.masked_fill(~allow[..., None], float("-inf"))
        a = torch.einsum("bijh,bjhd->bihd", w.softmax(dim=2), v).reshape(b, t, d)  # (B, T, D)
        x = x + self.drop(self.proj(a))
        return x + self.drop(self.mlp(self.ln2(x)))

    def infer(self, x: torch.Tensor, qkv: torch.Tensor | None = None) -> torch.Tensor:
        """``forward`` in eval mode without a mask, faster for short sequences: (B, T, D) -> (B, T, D).

        Each head's q, k, v are strided views of the fused projection that ``bmm`` reads in place
        (the einsums copy them to (B, H, T, Dh)); the logits are laid out (B, T_key, H * T_query) so
        the softmax runs over dim 1 with a 12-wide contiguous inner axis, not over rows of 6; a
        Linear's bias is added in place after the matmul (``addmm`` first fills its output with it).
        """
        _, t, d = x.shape
        h, dh = self.heads, d // self.heads
        qkv = linear(self.qkv, self.ln1(x)) if qkv is None else qkv  # (B, T, 3D)

        def part(s: int, j: int) -> torch.Tensor:  # (B, T, Dh): head j of q (s=0), k (1) or v (2)
            return qkv[..., s * d + j * dh : s * d + (j + 1) * dh]

        w = torch.cat([torch.bmm(part(1, j), part(0, j).transpose(1, 2)) for j in range(h)], dim=-1)
        w = w.mul_(self.scale).softmax(dim=1)  # (B, T_key, H * T_query)
        a = torch.cat([torch.bmm(w[..., j * t : (j + 1) * t].transpose(1, 2), part(2, j)) for j in range(h)],
                      dim=-1)  # (B, T_query, D)
        x = x + linear(self.proj, a)
        fc1, act, fc2 = self.mlp
        return x + linear(fc2, act(linear(fc1, self.ln2(x))))


def linear(layer: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    """``layer(x)`` as a matmul then an in-place bias add (cheaper on CPU than ``addmm``'s bias fill)."""
    return F.linear(x, layer.weight).add_(layer.bias)
