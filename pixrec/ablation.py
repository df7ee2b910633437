"""Ablation: the fusion model retrained with tokens removed, evaluated exactly like the main model."""

from __future__ import annotations

from dataclasses import replace

from pixrec.model import ModelConfig


def variant_config(model_config: ModelConfig, drop: list[str], variant: str) -> ModelConfig:
    """``model_config`` without the tokens in ``drop`` (each must be one the model uses)."""
    unknown = sorted(set(drop) - set(model_config.modalities))
    if unknown:
        raise ValueError(
            f"ablate.drop.{variant}: {unknown} not in model.modalities {model_config.modalities}"
        )
    kept = [t for t in model_config.modalities if t not in drop]
    return replace(model_config, modalities=kept)
