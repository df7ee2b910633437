"""Ablation: the fusion model retrained with tokens removed, evaluated exactly like the main model."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from pixrec.evaluation.evaluator import EvalConfig
from pixrec.model import ModelConfig
from pixrec.training import TrainConfig


def variant_config(model_config: ModelConfig, drop: list[str], variant: str) -> ModelConfig:
    """``model_config`` without the tokens in ``drop`` (each must be one the model uses)."""
    unknown = sorted(set(drop) - set(model_config.modalities))
    if unknown:
        raise ValueError(
            f"ablate.drop.{variant}: {unknown} not in model.modalities {model_config.modalities}"
        )
    kept = [t for t in model_config.modalities if t not in drop]
    return replace(model_config, modalities=kept)


def run_variant(
    variant: str,
    drop: list[str],
    split_dir: Path,
    embeddings_dir: Path,
    negatives_dir: Path,
    model_config: ModelConfig,
    train_config: TrainConfig,
    eval_config: EvalConfig,
    out_dir: Path,
) -> dict:
    """Train the variant exactly like the main model (same split, negatives, candidates, params
    but the dropped tokens), evaluate it on the three protocols; returns its metrics."""
    import numpy as np

    from pixrec import schema as S
    from pixrec.data.dataset import SplitData
    from pixrec.evaluation.evaluator import SampledCandidates, evaluate_model
    from pixrec.features import load_embeddings
    from pixrec.io import atomic_dir
    from pixrec.model import load_recommender
    from pixrec.training import train

    config = variant_config(model_config, drop, variant)
    data = SplitData.load(split_dir)
    embeddings = load_embeddings(embeddings_dir, data.n_items)
    negatives = np.load(Path(negatives_dir) / S.TRAIN_NEG_FILE, mmap_mode="r")
    with atomic_dir(out_dir) as tmp:
        train_metrics = train(data, embeddings, negatives, config, train_config, tmp)
    rec = load_recommender(out_dir, data, embeddings_dir, name=variant)
    result = evaluate_model(rec, data, SampledCandidates.load(negatives_dir, data), eval_config)
    return {**result.metrics, "modalities": config.modalities, "train": train_metrics}
