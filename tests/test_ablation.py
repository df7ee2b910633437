"""Ablation helpers: a variant's section from dotted overrides, which tokens a variant removes, and
reusing the main checkpoint only when it is that model."""

from __future__ import annotations

import json
from dataclasses import asdict, replace

import pytest
from real_params import real_config

from pixrec.ablation import changed_tokens, reuse_trained, variant_section
from pixrec.config import ConfigError
from pixrec.models import family
from pixrec.models.two_tower import TwoTowerSection


def test_a_variant_replaces_only_the_keys_it_names():
    fam, base = family("two_tower"), real_config(TwoTowerSection)
    changed = variant_section(fam, base, "bce", {"model.loss": "bce"}, "two_tower")
    assert changed.model.loss == "bce"
    assert asdict(replace(changed, model=replace(changed.model, loss=base.model.loss))) == asdict(base)
    assert variant_section(fam, base, "full", {}, "two_tower") == base
    # typed like params.yaml's own: 0 for a float, and a bad value is the section's own error
    assert variant_section(fam, base, "x", {"model.id_dropout": 0}, "two_tower").model.id_dropout == 0.0
    with pytest.raises(ConfigError, match=r"ablate\.cells\.x\.model\.lossy: unknown key"):
        variant_section(fam, base, "x", {"model.lossy": "bce"}, "two_tower")
    with pytest.raises(ConfigError, match="unknown"):
        variant_section(fam, base, "x", {"model.tokens": ["item", "smell"]}, "two_tower")


def test_changed_tokens_are_reported_only_when_tokens_alone_changed():
    fam, base = family("two_tower"), real_config(TwoTowerSection)
    no_image = variant_section(fam, base, "no_image", {"model.tokens": ["item", "tag", "text"]}, "two_tower")
    assert changed_tokens(fam, base, no_image) == {"image"}
    both = variant_section(fam, base, "x", {"model.tokens": ["item", "tag", "text"], "model.loss": "bce"},
                           "two_tower")
    assert changed_tokens(fam, base, both) == set()
    assert changed_tokens(fam, base, base) == set()
    leak = variant_section(fam, base, "x", {"model.tokens": [*base.model.tokens, "counts"]}, "two_tower")
    assert changed_tokens(fam, base, leak) == {"counts"}


def test_reuse_copies_the_checkpoint_and_refuses_another_model(tmp_path):
    main = tmp_path / "main"
    main.mkdir()
    (main / "model.pt").write_bytes(b"weights")
    config = real_config(TwoTowerSection).model
    (main / "meta.json").write_text(json.dumps({"config": asdict(config), "metrics": {"best_epoch": 3}}))
    got = reuse_trained(tmp_path / "cell", main, config)
    assert got["best_epoch"] == 3 and got["reused"] == str(main)
    assert (tmp_path / "cell" / "model.pt").read_bytes() == b"weights"
    with pytest.raises(ValueError, match="is not this cell's"):
        reuse_trained(tmp_path / "other", main, replace(config, loss="bce"))
    assert not (tmp_path / "other").exists()  # refused: nothing half-written left behind


def test_a_nested_variant_replaces_only_what_it_names():
    fam, base = family("two_tower"), real_config(TwoTowerSection)
    dotted = variant_section(fam, base, "x", {"model.loss": "bce"}, "two_tower")
    assert variant_section(fam, base, "x", {"model": {"loss": "bce"}}, "two_tower") == dotted
    with pytest.raises(ConfigError, match=r"ablate\.cells\.x\.model\.lossy: unknown key"):
        variant_section(fam, base, "x", {"model": {"lossy": "bce"}}, "two_tower")
