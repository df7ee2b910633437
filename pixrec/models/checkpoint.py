"""The one checkpoint format of the trained models: ``models/<name>/``, written by the train stage and
read by every stage that scores with the model.

    model.pt   torch.save of {"state_dict": the weights,
                              "config": the network's config (its ``model`` section) as a mapping,
                              "dims": the network's size arguments (catalogue, input widths),
                              "count_stats": the training items' count statistics (features.py),
                              + the family's own entries (two_tower: "cold_offset")}
    meta.json  the training loop's meta (metrics, history), the config, dims, the numerics
               environment (package versions, CPU kernel settings) and the family's own entries

A network is rebuilt as ``net(config, **dims)``, so its constructor takes its config and its dims.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pixrec.config import from_mapping
from pixrec.data.dataset import SplitData
from pixrec.errors import InputError
from pixrec.features import CountStats, ItemFeatures, build_item_features, load_embeddings
from pixrec.models import train_stage
from pixrec.numerics import environment

CHECKPOINT = "model.pt"
META = "meta.json"


def item_dims(data: SplitData, feats: ItemFeatures) -> dict[str, int]:
    """The size arguments every network takes from the catalogue and its item features (a network
    may take more, e.g. the pair model's ``n_users``)."""
    return {"n_items": data.n_items, "n_tags": int(data.item_tags.max()),
            "n_count_features": int(feats.counts.shape[1]),
            "d_text": int(feats.text.shape[1]), "d_image": int(feats.image.shape[1])}


def save(out_dir: Path, module: nn.Module, dims: dict, count_stats: CountStats, meta: dict,
         extra: Mapping[str, Any] | None = None) -> None:
    """``module`` (whose ``config`` is its config dataclass) into ``out_dir``: weights and all that
    rebuilds it in model.pt, ``meta`` and the same in meta.json. ``extra``: the family's own entries,
    written to both (meta.json may hold more, through ``meta``)."""
    out_dir, extra = Path(out_dir), dict(extra or {})
    config = asdict(module.config)
    torch.save({"state_dict": module.state_dict(), "config": config, "dims": dims,
                "count_stats": asdict(count_stats), **extra}, out_dir / CHECKPOINT)
    meta = {**meta, "config": config, "dims": dims, "numerics": environment(), **extra}
    (out_dir / META).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")


@dataclass
class Checkpoint:
    """A loaded checkpoint: the network in eval mode, the count statistics its features were
    standardised with, and the family's own entries."""

    module: nn.Module
    count_stats: CountStats
    extra: dict[str, Any]

    def features(self, data: SplitData, embeddings_dir: Path) -> ItemFeatures:
        """The model's item inputs for ``data``'s catalogue, standardised as in training."""
        return build_item_features(data, load_embeddings(embeddings_dir, data.n_items), self.count_stats)


def load(model_dir: Path, name: str, net: type[nn.Module], config: type) -> Checkpoint:
    """Model ``name``'s checkpoint in ``model_dir``, rebuilt as ``net(config, **dims)``."""
    path = Path(model_dir) / CHECKPOINT
    if not path.is_file():
        raise InputError(f"{path}: no checkpoint; run dvc repro {train_stage(name)}")
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    module = net(from_mapping(config, ckpt.pop("config"), f"{name}.model"), **ckpt.pop("dims"))
    module.load_state_dict(ckpt.pop("state_dict"))
    return Checkpoint(module.eval(), CountStats(**ckpt.pop("count_stats")), ckpt)
