"""Ablation: the fusion model retrained with tokens removed (first axis) or on another image × text
encoder pair (second axis), each trained and evaluated exactly like the main model."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from pixrec.config import ConfigError, section
from pixrec.errors import InputError
from pixrec.evaluation.config import EvalConfig
from pixrec.model import ModelConfig
from pixrec.training import TrainConfig


@section
class EncoderGrid:
    """``ablate.encoder_grid``: the image and text encoder names whose every pair is a grid cell."""

    image: list[str]
    text: list[str]

    def __post_init__(self) -> None:
        if not self.image or not self.text:
            raise ConfigError("ablate.encoder_grid: image and text each need at least one encoder name")


def variant_config(model_config: ModelConfig, drop: list[str], variant: str) -> ModelConfig:
    """``model_config`` without the tokens in ``drop`` (each must be one the model uses)."""
    unknown = sorted(set(drop) - set(model_config.modalities))
    if unknown:
        raise ConfigError(
            f"ablate.drop.{variant}: {unknown} not in model.modalities {model_config.modalities}"
        )
    kept = [t for t in model_config.modalities if t not in drop]
    return replace(model_config, modalities=kept)


def grid_encoder(base: dict, name: str, overrides: dict | None) -> dict:
    """The encoder section for one grid entry: the pipeline's own section when ``name`` is its
    encoder, else that section with another name and default weights; then the entry's overrides."""
    if not isinstance(overrides, dict | None):
        raise ConfigError(f"ablate.encoder_args.{name}: expected a mapping of encoder keys, "
                          f"got {overrides!r}")
    config = dict(base)
    if base.get("name") != name:
        config.update(name=name, weights=None)
        if "arch" in config:
            config["arch"] = None
    return {**config, **(overrides or {})}


def _copy_dir(src: Path, dst: Path, meta_name: str = "meta.json") -> dict:
    """Copy the files of ``src`` into ``dst`` atomically; returns ``dst/meta_name`` parsed."""
    import json
    import shutil

    from pixrec.io import atomic_dir

    with atomic_dir(Path(dst)) as tmp:
        for f in sorted(Path(src).iterdir()):
            shutil.copy2(f, tmp / f.name)
    return json.loads((Path(dst) / meta_name).read_text())


def reuse_trained(model_dir: Path, reuse: Path, model_config: ModelConfig) -> dict:
    """Copy the pipeline's own checkpoint ``reuse`` into ``model_dir`` instead of retraining.

    Only for a cell whose model config, training params, embeddings and negatives are the main
    model's: training is deterministic, so retraining would reproduce these weights bit for bit at
    the cost of a whole training run. Returns the train metrics stored beside the checkpoint.
    """
    import json
    from dataclasses import asdict

    from pixrec.model import META

    meta = json.loads((Path(reuse) / META).read_text())
    if meta.get("config") != asdict(model_config):
        raise InputError(f"{reuse}: its model config {meta.get('config')} is not this cell's "
                         f"{asdict(model_config)}; re-run the train stage")
    _copy_dir(reuse, model_dir, META)
    return {**meta["metrics"], "reused": str(reuse)}


def train_and_evaluate(
    name: str,
    split_dir: Path,
    embeddings_dir: Path,
    negatives_dir: Path,
    candidates_dir: Path,
    model_config: ModelConfig,
    train_config: TrainConfig,
    eval_config: EvalConfig,
    model_dir: Path,
    reuse_model: Path | None = None,
) -> dict:
    """Train into ``model_dir`` on the given embeddings (or copy ``reuse_model``, the same model
    already trained), evaluate on the three protocols; two-stage when ``eval_config.ranking`` says so.

    ``negatives_dir`` and ``candidates_dir``: the negative-sample stage's two outputs."""
    from pixrec.data.dataset import SplitData
    from pixrec.evaluation import SampledCandidates, evaluate_model
    from pixrec.evaluation.two_stage import two_stage_ranker
    from pixrec.features import load_embeddings
    from pixrec.io import atomic_dir
    from pixrec.model import load_recommender
    from pixrec.negatives import load_training_negatives
    from pixrec.training import train

    data = SplitData.load(split_dir)
    embeddings = load_embeddings(embeddings_dir, data.n_items)
    if reuse_model is not None:
        train_metrics = reuse_trained(model_dir, reuse_model, model_config)
    else:
        negatives = load_training_negatives(negatives_dir)
        with atomic_dir(model_dir) as tmp:
            train_metrics = train(data, embeddings, negatives, model_config, train_config, tmp)
    rec = load_recommender(model_dir, data, embeddings_dir, name=name)
    if eval_config.ranking == "two_stage":
        vectors = {side: (e.vectors, e.mask) for side, e in embeddings.items()}
        rec = two_stage_ranker(rec, data, vectors, eval_config)
    result = evaluate_model(rec, data, SampledCandidates.load(candidates_dir, data), eval_config)
    return {**result.metrics, "modalities": model_config.modalities, "train": train_metrics}


def run_variant(
    variant: str, drop: list[str], split_dir: Path, embeddings_dir: Path, negatives_dir: Path,
    candidates_dir: Path, model_config: ModelConfig, train_config: TrainConfig, eval_config: EvalConfig,
    out_dir: Path, main_model: Path | None = None,
) -> dict:
    """First axis: the main pipeline's embeddings, the model without the tokens in ``drop``.

    A variant that drops nothing is the main model: ``main_model`` (its checkpoint) is reused. So is
    one that drops only tokens this dataset has no input for (``no_image`` on a text-only dataset):
    there is nothing to remove, and the cell says so in ``nothing_removed`` instead of training a
    duplicate.
    """
    from pixrec.data.modalities import empty_modalities

    config = variant_config(model_config, drop, variant)
    empty = empty_modalities(split_dir, embeddings_dir) if drop and main_model is not None else {}
    absent = bool(drop) and all(token in empty for token in drop)
    if absent:
        config = model_config
    reuse = main_model if main_model is not None and config == model_config else None
    result = train_and_evaluate(variant, split_dir, embeddings_dir, negatives_dir, candidates_dir, config,
                                train_config, eval_config, out_dir, reuse_model=reuse)
    if absent:
        result["nothing_removed"] = "; ".join(empty[token] for token in drop)
    return result


def run_encoder_pair(
    raw_dir: Path, split_dir: Path, negatives_dir: Path, candidates_dir: Path, image_config, text_config,
    model_config: ModelConfig, train_config: TrainConfig, eval_config: EvalConfig, out_dir: Path,
    main: tuple[Path, Path] | None = None,
) -> dict:
    """Second axis: embed with this image × text encoder pair into ``out_dir/embeddings``, then the
    full model trained and evaluated on them.

    ``main`` = (embeddings dir, model dir) of the pipeline, passed when this pair *is* the pipeline's
    encoder configuration: its embeddings and model are copied, not recomputed (same bits).
    """
    from pixrec.encoders.image import run_embed_images
    from pixrec.encoders.text import run_embed_text

    emb_dir = Path(out_dir) / "embeddings"
    if main is None:
        metas = {"image": run_embed_images(split_dir, raw_dir, emb_dir / "image", image_config),
                 "text": run_embed_text(split_dir, emb_dir / "text", text_config)}
    else:
        metas = {side: _copy_dir(Path(main[0]) / side, emb_dir / side) for side in ("image", "text")}
    name = f"{image_config.name}+{text_config.name}"
    result = train_and_evaluate(name, split_dir, out_dir / "embeddings", negatives_dir, candidates_dir,
                                model_config, train_config, eval_config, Path(out_dir) / "model",
                                reuse_model=None if main is None else Path(main[1]))
    encoders = {side: {k: meta.get(k) for k in ("encoder", "arch", "weights", "random_weights", "dim")}
                for side, meta in metas.items()}
    return {**result, "encoders": encoders}
