"""The training losses against hand-worked values."""

from __future__ import annotations

import math

import pytest
import torch

from pixrec.losses import LOSSES


def test_sampled_softmax_with_logq_matches_the_worked_example():
    # one position, candidates with logits 2, 1, 0 and sampling rates 1/2, 1/4, 1/4; positive = 0.
    # logQ divides each exp(logit) by its rate: 2e^2 = 14.778, 4e^1 = 10.873, 4e^0 = 4,
    # so p(positive) = 14.778 / 29.651 = 0.49840 and the loss is -ln 0.49840 = 0.69636.
    logits = torch.tensor([[2.0, 1.0, 0.0]])
    log_q = torch.log(torch.tensor([0.5, 0.25, 0.25]))
    loss = LOSSES.get("softmax")(logits, torch.tensor([0]), log_q)
    expected = -math.log(2 * math.e**2 / (2 * math.e**2 + 4 * math.e + 4))
    assert loss.item() == pytest.approx(expected, abs=1e-6)
    assert expected == pytest.approx(0.69636, abs=1e-5)


def test_sampled_softmax_without_logq_is_plain_cross_entropy():
    logits = torch.tensor([[2.0, 1.0, 0.0], [0.0, 0.0, 3.0]])
    loss = LOSSES.get("softmax")(logits, torch.tensor([0, 2]), None)
    row0 = -math.log(math.e**2 / (math.e**2 + math.e + 1))
    row1 = -math.log(math.e**3 / (2 + math.e**3))
    assert loss.item() == pytest.approx((row0 + row1) / 2, abs=1e-6)


def test_logq_lifts_a_rarely_sampled_candidate():
    # equal logits: without correction the positive has p = 1/2; when it is the rarely drawn one
    # (rate 0.1 vs 0.9) logQ says its logit was under-sampled, so its probability rises to 0.9
    logits, target = torch.tensor([[0.0, 0.0]]), torch.tensor([0])
    plain = LOSSES.get("softmax")(logits, target, None).item()
    corrected = LOSSES.get("softmax")(logits, target, torch.log(torch.tensor([0.1, 0.9]))).item()
    assert plain == pytest.approx(math.log(2), abs=1e-6)
    assert corrected == pytest.approx(-math.log(0.9), abs=1e-6)


def test_bce_is_the_positive_term_plus_the_mean_negative_term():
    # softplus(-2) + (softplus(1) + softplus(0)) / 2 = 0.12693 + (1.31326 + 0.69315) / 2 = 1.13013
    logits = torch.tensor([[2.0, 1.0, 0.0]])
    loss = LOSSES.get("bce")(logits, torch.tensor([0]), torch.zeros(3))
    softplus = lambda x: math.log1p(math.exp(x))  # noqa: E731
    assert loss.item() == pytest.approx(softplus(-2) + (softplus(1) + softplus(0)) / 2, abs=1e-6)
    assert loss.item() == pytest.approx(1.13013, abs=1e-5)
