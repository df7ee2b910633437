"""Ablation: the fusion model retrained with tokens removed (first axis) or on another image × text
encoder pair (second axis), each trained and evaluated exactly like the main model."""

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


def grid_encoder(base: dict, name: str, overrides: dict | None) -> dict:
    """The encoder section for one grid entry: the pipeline's own section when ``name`` is its
    encoder, else that section with another name and default weights; then the entry's overrides."""
    config = dict(base)
    if base.get("name") != name:
        config.update(name=name, weights=None)
        if "arch" in config:
            config["arch"] = None
    return {**config, **(overrides or {})}


def train_and_evaluate(
    name: str,
    split_dir: Path,
    embeddings_dir: Path,
    negatives_dir: Path,
    model_config: ModelConfig,
    train_config: TrainConfig,
    eval_config: EvalConfig,
    model_dir: Path,
) -> dict:
    """Train into ``model_dir`` on the given embeddings, evaluate on the three protocols."""
    import numpy as np

    from pixrec import schema as S
    from pixrec.data.dataset import SplitData
    from pixrec.evaluation.evaluator import SampledCandidates, evaluate_model
    from pixrec.features import load_embeddings
    from pixrec.io import atomic_dir
    from pixrec.model import load_recommender
    from pixrec.training import train

    data = SplitData.load(split_dir)
    embeddings = load_embeddings(embeddings_dir, data.n_items)
    negatives = np.load(Path(negatives_dir) / S.TRAIN_NEG_FILE, mmap_mode="r")
    with atomic_dir(model_dir) as tmp:
        train_metrics = train(data, embeddings, negatives, model_config, train_config, tmp)
    rec = load_recommender(model_dir, data, embeddings_dir, name=name)
    result = evaluate_model(rec, data, SampledCandidates.load(negatives_dir, data), eval_config)
    return {**result.metrics, "modalities": model_config.modalities, "train": train_metrics}


def run_variant(
    variant: str, drop: list[str], split_dir: Path, embeddings_dir: Path, negatives_dir: Path,
    model_config: ModelConfig, train_config: TrainConfig, eval_config: EvalConfig, out_dir: Path,
) -> dict:
    """First axis: the main pipeline's embeddings, the model without the tokens in ``drop``."""
    config = variant_config(model_config, drop, variant)
    return train_and_evaluate(variant, split_dir, embeddings_dir, negatives_dir, config, train_config,
                              eval_config, out_dir)


def run_encoder_pair(
    raw_dir: Path, split_dir: Path, negatives_dir: Path, image_config, text_config,
    model_config: ModelConfig, train_config: TrainConfig, eval_config: EvalConfig, out_dir: Path,
) -> dict:
    """Second axis: embed with this image × text encoder pair into ``out_dir/embeddings``, then the
    full model trained and evaluated on them."""
    from pixrec.encoders.image import run_embed_images
    from pixrec.encoders.text import run_embed_text

    out_dir = Path(out_dir)
    image_meta = run_embed_images(split_dir, raw_dir, out_dir / "embeddings" / "image", image_config)
    text_meta = run_embed_text(split_dir, out_dir / "embeddings" / "text", text_config)
    name = f"{image_config.name}+{text_config.name}"
    result = train_and_evaluate(name, split_dir, out_dir / "embeddings", negatives_dir, model_config,
                                train_config, eval_config, out_dir / "model")
    encoders = {side: {k: meta.get(k) for k in ("encoder", "arch", "weights", "random_weights", "dim")}
                for side, meta in (("image", image_meta), ("text", text_meta))}
    return {**result, "encoders": encoders}
