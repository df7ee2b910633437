"""The fusion model's shapes and its one masking mechanism ("absent" tokens)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from real_params import real_config

from pixrec.features import ItemFeatures
from pixrec.models.fusion import FusionRecommender
from pixrec.models.fusion_net import TOKENS, FusionConfig, FusionModel
from pixrec.models.layers import Block

N_USERS, N_ITEMS, N_TAGS, D_TEXT, D_IMAGE = 7, 11, 3, 5, 6


def make_feats(seed: int = 0) -> ItemFeatures:
    g = torch.Generator().manual_seed(seed)
    return ItemFeatures(
        tag=torch.randint(0, N_TAGS + 1, (N_ITEMS,), generator=g),
        counts=torch.randn(N_ITEMS, 14, generator=g),
        counts_mask=torch.ones(N_ITEMS, dtype=torch.bool),
        text=torch.randn(N_ITEMS, D_TEXT, generator=g),
        text_mask=torch.ones(N_ITEMS, dtype=torch.bool),
        image=torch.randn(N_ITEMS, D_IMAGE, generator=g),
        image_mask=torch.ones(N_ITEMS, dtype=torch.bool),
        known=torch.ones(N_ITEMS, dtype=torch.bool),
        user_text=torch.randn(N_USERS, D_TEXT, generator=g),
        user_text_mask=torch.ones(N_USERS, dtype=torch.bool),
        user_image=torch.randn(N_USERS, D_IMAGE, generator=g),
        user_image_mask=torch.ones(N_USERS, dtype=torch.bool),
    )


def make_model(**overrides) -> FusionModel:
    torch.manual_seed(0)
    config = real_config(FusionConfig, dim=16, heads=2, layers=2, dropout=0.0, mlp_hidden=8, **overrides)
    return FusionModel(config, N_USERS, N_ITEMS, N_TAGS, 14, D_TEXT, D_IMAGE).eval()


def pairs() -> tuple[torch.Tensor, torch.Tensor]:
    users = torch.arange(N_USERS).repeat_interleave(N_ITEMS)
    items = torch.arange(N_ITEMS).repeat(N_USERS)
    return users, items


# 5: the catalogue in three slices, one user per call; 13: one slice, one user per call;
# 40: three users per call (7 users: groups of 3, 3, 1)
@pytest.mark.parametrize("pairs_per_batch", [5, 13, 40])
def test_forward_shape_and_scoring_interface_agree(pairs_per_batch):
    model, feats = make_model(), make_feats()
    users, items = pairs()
    with torch.inference_mode():
        logits = model(users, items, feats)
    assert logits.shape == (N_USERS * N_ITEMS,)
    rec = FusionRecommender(model, feats, pairs_per_batch=pairs_per_batch)
    all_scores = rec.score_all(np.arange(N_USERS))
    assert all_scores.shape == (N_USERS, N_ITEMS) and all_scores.dtype == np.float32
    np.testing.assert_allclose(all_scores.ravel(), logits.numpy(), rtol=1e-5, atol=1e-6)
    some = rec.score(np.array([2, 4]), np.array([[0, 5, 9], [1, 1, 3]]))
    np.testing.assert_allclose(some, all_scores[[[2], [4]], [[0, 5, 9], [1, 1, 3]]], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("heads", [1, 2, 4])
@pytest.mark.parametrize("tokens", [1, 6, 9])
def test_block_infer_is_forward_in_eval_mode(heads, tokens):
    """The scoring layout of attention (strided per-head bmm, softmax over dim 1, in-place biases)
    computes the training one, with and without a precomputed first projection."""
    torch.manual_seed(heads * 10 + tokens)
    block = Block(16, heads, dropout=0.3).eval()
    with torch.no_grad():
        for p in block.parameters():  # LayerNorm and bias parameters away from their 1 / 0 init
            p.add_(torch.randn_like(p) * 0.2)
    x = torch.randn(37, tokens, 16)
    with torch.inference_mode():
        ref = block(x)
        torch.testing.assert_close(block.infer(x), ref, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(block.infer(x, block.project(x)), ref, rtol=1e-5, atol=1e-5)
    assert not torch.equal(ref, x)


@pytest.mark.parametrize("token", ["image", "text", "counts", "tag"])
def test_dropped_modality_ignores_its_input(token):
    modalities = [t for t in TOKENS if t != token]
    model, feats = make_model(modalities=modalities), make_feats()
    users, items = pairs()
    other = make_feats(seed=1)
    changed = make_feats()
    setattr(changed, token, getattr(other, token))
    if token in ("text", "image"):  # the user's content history belongs to the same modality
        setattr(changed, f"user_{token}", getattr(other, f"user_{token}"))
    with torch.inference_mode():
        before, after = model(users, items, feats), model(users, items, changed)
    torch.testing.assert_close(before, after, rtol=0, atol=0)
    # and the same change does move a model that uses the token
    full = make_model()
    with torch.inference_mode():
        assert not torch.equal(full(users, items, feats), full(users, items, changed))


def test_masked_input_and_cold_item_id_are_ignored():
    model, feats = make_model(), make_feats()
    feats.image_mask[3] = False  # e.g. a corrupt cover
    feats.known[5] = False  # an item nobody clicked in training
    users, items = pairs()
    with torch.inference_mode():
        before = model(users, items, feats)
        feats.image[3] += 100.0
        model.item_emb.weight[5] += 100.0
        after = model(users, items, feats)
    torch.testing.assert_close(before, after, rtol=0, atol=0)
    # the absent vector is not a zero vector: a masked cover scores differently from a zero cover
    feats.image_mask[3] = True
    feats.image[3] = 0.0
    with torch.inference_mode():
        zero = model(users, items, feats)
    assert not torch.equal(zero[items == 3], before[items == 3])


def test_item_token_dropout_only_in_training_calls():
    model, feats = make_model(item_token_dropout=0.5), make_feats()
    users, items = pairs()
    with torch.inference_mode():
        a, b = model(users, items, feats), model(users, items, feats)
        torch.manual_seed(1)
        c = model(users, items, feats, item_dropout=True)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not torch.equal(a, c)


def test_config_rejects_unknown_modality_and_bad_heads():
    with pytest.raises(ValueError, match="unknown token"):
        real_config(FusionConfig, modalities=["user", "video"])
    with pytest.raises(ValueError, match="divisible"):
        real_config(FusionConfig, dim=30, heads=4)
