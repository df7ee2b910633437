"""The two-tower model's training losses, one registry keyed by its ``two_tower.model.loss``.

Each is a :data:`Loss`: ``loss(logits, target, log_q) -> scalar``, where ``logits`` (P, C) scores
every training position (a user state) against every candidate item of the step, ``target`` (P,) is
the column of each position's next item, and ``log_q`` (C,) is the log of each candidate's expected
count in the sampled set, or None when logQ correction is off:

``softmax``  sampled softmax cross-entropy over all C candidates, logits corrected by −log q
             (logQ; Yi et al., RecSys 2019): candidates drawn often (popular items among the in-batch
             positives) would otherwise be pushed down for being drawn, not for being wrong.
             Softmax over many negatives beats BCE on a few (Klenitskiy & Vasilev, RecSys 2023;
             gSASRec, Petrov & Macdonald, RecSys 2023).
``bce``      binary cross-entropy: the positive's logit pushed up and every other candidate's pushed
             down independently, the negatives' terms averaged (the ablation's "BCE instead of
             softmax", as in SASRec's original; no logQ).

A candidate that is another row's positive is a negative for this row: the usual in-batch scheme.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from pixrec.registry import Registry

Loss = Callable[[torch.Tensor, torch.Tensor, torch.Tensor | None], torch.Tensor]  # (logits, target, log_q)
LOSSES: Registry[Loss] = Registry("loss")


@LOSSES.register("softmax")
def sampled_softmax(logits: torch.Tensor, target: torch.Tensor,
                    log_q: torch.Tensor | None) -> torch.Tensor:
    """logits (P, C), target (P,) long, log_q (C,) or None -> mean cross-entropy (scalar)."""
    if log_q is not None:
        logits = logits - log_q[None, :]
    return F.cross_entropy(logits, target)


@LOSSES.register("bce")
def binary_cross_entropy(logits: torch.Tensor, target: torch.Tensor,
                         log_q: torch.Tensor | None) -> torch.Tensor:
    """logits (P, C), target (P,) -> mean over rows of softplus(-s_pos) + mean softplus(s_neg);
    ``log_q`` is not used."""
    rows = torch.arange(len(target))
    positive = F.softplus(-logits[rows, target])  # (P,)
    negatives = F.softplus(logits)  # (P, C), the positive's column removed below
    negatives = (negatives.sum(dim=1) - negatives[rows, target]) / max(logits.shape[1] - 1, 1)
    return (positive + negatives).mean()
