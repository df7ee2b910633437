"""Ablation helpers: a variant's config, and reusing the main checkpoint only when it is that model."""

from __future__ import annotations

import json

import pytest
from real_params import real_config

from pixrec.ablation import reuse_trained, variant_config
from pixrec.model import META, ModelConfig


def test_variant_config_drops_only_known_tokens():
    base = real_config(ModelConfig)
    assert variant_config(base, ["image"], "no_image").modalities == ["user", "item", "tag", "counts", "text"]
    assert variant_config(base, [], "full") == base
    with pytest.raises(ValueError, match=r"ablate\.drop\.bad"):
        variant_config(base, ["pixels"], "bad")


def test_reuse_copies_the_checkpoint_and_refuses_another_model(tmp_path):
    from dataclasses import asdict

    main = tmp_path / "main"
    main.mkdir()
    (main / "model.pt").write_bytes(b"weights")
    config = real_config(ModelConfig)
    (main / META).write_text(json.dumps({"config": asdict(config), "metrics": {"best_epoch": 3}}))
    got = reuse_trained(tmp_path / "cell", main, config)
    assert got["best_epoch"] == 3 and got["reused"] == str(main)
    assert (tmp_path / "cell" / "model.pt").read_bytes() == b"weights"
    with pytest.raises(ValueError, match="is not this cell's"):
        reuse_trained(tmp_path / "other", main, variant_config(config, ["image"], "no_image"))
    assert not (tmp_path / "other").exists()  # refused: nothing half-written left behind
