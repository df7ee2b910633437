"""Ablation of the headline model: each variant (first axis) changes a few keys of the model's params
section — a token removed or added, the loss, ID dropout, the fusion, the freshness bias — and is
trained and evaluated exactly like the model itself. The second axis retrains the model on another
image x text encoder pair. (Re-ranking by the pair model is a row of the evaluate stage.)

A variant is a mapping of dotted keys of the model's section (``model.loss: bce``); nothing else is
changed, and a variant whose section equals the model's reuses the trained checkpoint (training is
deterministic: retraining would give the same bits).
"""

from __future__ import annotations

import copy
import json
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any

from pixrec.atomic import atomic_dir
from pixrec.config import ConfigError, from_mapping, section, to_mapping
from pixrec.data.dataset import SplitData
from pixrec.data.modalities import empty_modalities
from pixrec.errors import InputError
from pixrec.evaluation.candidates import SampledCandidates
from pixrec.models import family
from pixrec.negatives import load_training_negatives

# Training, evaluation, embeddings and encoders (torch, every baseline) are imported where they run:
# the ablate-summary stage imports this module for EncoderGrid alone.


@section
class EncoderGrid:
    """``ablate.encoder_grid``: the image and text encoder names whose every pair is a grid cell."""

    image: list[str]
    text: list[str]

    def __post_init__(self) -> None:
        if not self.image or not self.text:
            raise ConfigError("ablate.encoder_grid: image and text each need at least one encoder name")


def variant_section(family, base: Any, name: str, variant: dict[str, Any], model: str):
    """The model's section with ``variant``'s keys replaced (typed like params.yaml's own). A key is
    dotted (``model.loss: bce``) or nested (``model: {loss: bce}``): both replace only what they name."""
    raw = to_mapping(base)
    _override(raw, variant, f"ablate.cells.{name}", model)
    return from_mapping(family.section, raw, f"{model} + ablate.cells.{name}")


def _override(node: dict, changes: dict[str, Any], where: str, model: str) -> None:
    """Replace in ``node`` (in place) each dotted or nested key of ``changes``; an unknown key is an
    error naming it."""
    for key, value in changes.items():
        *parents, last = key.split(".")
        target = node
        for part in parents:
            if not isinstance(target.get(part), dict):
                raise ConfigError(f"{where}.{key}: unknown key; it names no key of {model}")
            target = target[part]
        if last not in target:
            raise ConfigError(f"{where}.{key}: unknown key; valid keys are "
                              f"{sorted('.'.join((*parents, k)) for k in target)}")
        if isinstance(value, dict) and isinstance(target[last], dict):
            _override(target[last], value, f"{where}.{key}", model)
        else:
            target[last] = copy.deepcopy(value)


def changed_tokens(family, base: Any, changed: Any) -> set[str]:
    """The input tokens ``changed`` removes or adds (empty when it changes anything else too)."""
    key = family.tokens_key
    before, after = getattr(base.model, key), getattr(changed.model, key)
    same_otherwise = {**asdict(changed), "model": {**asdict(changed.model), key: before}} == asdict(base)
    return set(before) ^ set(after) if same_otherwise else set()


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


def copy_dir(src: Path, dst: Path, meta_name: str = "meta.json") -> dict:
    """Copy ``src`` (its files and folders, e.g. embed-images' ``fitted/``) into ``dst`` atomically;
    returns ``dst/meta_name`` parsed."""
    with atomic_dir(Path(dst)) as tmp:
        for f in sorted(Path(src).iterdir()):
            (shutil.copytree if f.is_dir() else shutil.copy2)(f, tmp / f.name)
    return json.loads((Path(dst) / meta_name).read_text())


def reuse_trained(model_dir: Path, reuse: Path, model_config: Any) -> dict:
    """Copy the pipeline's own checkpoint ``reuse`` into ``model_dir`` instead of retraining.

    Only for a cell whose model config, training params, embeddings and negatives are the main
    model's: training is deterministic, so retraining would reproduce these weights bit for bit at
    the cost of a whole training run. Returns the train metrics stored beside the checkpoint.
    """
    meta = json.loads((Path(reuse) / "meta.json").read_text())
    if meta.get("config") != asdict(model_config):
        raise InputError(f"{reuse}: its model config {meta.get('config')} is not this cell's "
                         f"{asdict(model_config)}; re-run the model's train stage")
    copy_dir(reuse, model_dir)
    return {**meta["metrics"], "reused": str(reuse)}


def train_or_reuse(model: str, changed: Any, base: Any, data, embeddings, negatives_dir: Path,
                   tuning: Path, model_dir: Path, main_model: Path) -> dict:
    """Train ``changed`` into ``model_dir``, or copy ``main_model`` when ``changed`` is the model's
    own section; the train metrics either way."""
    import torch

    from pixrec.models.cold_lift import Yardstick
    from pixrec.training import train

    if changed == base:
        return reuse_trained(model_dir, main_model, changed.model)
    fam = family(model)
    negs = load_training_negatives(negatives_dir) if fam.reads_negatives else None
    yardstick = Yardstick.from_tuning(tuning) if fam.reads_tuning else None
    task = fam.task(data, embeddings, negs, changed, torch.device("cpu"), yardstick)
    with atomic_dir(model_dir) as tmp:
        return train(task, changed.train, tmp)


def run_variant(name: str, variant: dict[str, Any], model: str, base: Any, changed: Any,
                paths: dict[str, Path], eval_config, out_dir: Path) -> dict:
    """One first-axis cell: ``changed`` (``variant`` applied to ``model``'s section ``base`` by
    :func:`variant_section`), trained (or the main checkpoint reused), then evaluated on the three
    protocols. ``paths``: split, embeddings, negatives, candidates, tuning (the tune stage's metrics),
    model (the main checkpoint).

    A variant that removes or adds only tokens this dataset has no input for (``no_image`` on a
    text-only dataset, ``lifetime_counts`` where there are no counts) changes nothing: it reuses the
    main model and says why in ``nothing_removed``.
    """
    from pixrec.evaluation.evaluator import evaluate_model
    from pixrec.features import load_embeddings

    fam = family(model)
    tokens = changed_tokens(fam, base, changed)
    empty = empty_modalities(paths["split"], paths["embeddings"]) if tokens else {}
    absent = bool(tokens) and tokens <= set(empty)
    if absent:
        changed = base
    data = SplitData.load(paths["split"])
    embeddings = load_embeddings(paths["embeddings"], data.n_items)
    train_metrics = train_or_reuse(model, changed, base, data, embeddings, paths["negatives"],
                                   paths["tuning"], Path(out_dir), paths["model"])
    rec = ranked(fam, fam.load(Path(out_dir), data, paths["embeddings"], name=name), data, embeddings,
                 eval_config)
    result = evaluate_model(rec, data, SampledCandidates.load(paths["candidates"], data), eval_config)
    out = {**result.metrics, "variant": variant, "model": model, "train": train_metrics}
    if absent:
        out["nothing_removed"] = "; ".join(empty[token] for token in sorted(tokens))
    return out


def ranked(fam, rec, data, embeddings, eval_config):
    """``rec`` as evaluated: behind the two-stage retrievers when ``eval.ranking: two_stage`` and the
    model scores pair by pair (exact ranking would cost n_users x n_items forward passes)."""
    from pixrec.evaluation.two_stage import two_stage_ranker

    if eval_config.ranking == "two_stage" and fam.pairwise:
        return two_stage_ranker(rec, data, embeddings, eval_config)
    return rec


def run_encoder_pair(model: str, base: Any, image_config, text_config, paths: dict[str, Path],
                     eval_config, out_dir: Path, own: bool) -> dict:
    """Second axis: embed with this image x text encoder pair into ``out_dir/embeddings``, then
    ``model`` trained and evaluated on them. ``own``: the pair is the pipeline's own encoder
    configuration, so its embeddings and trained model are copied instead (the same bits).
    """
    from pixrec.encoders.image import run_embed_images
    from pixrec.encoders.text import run_embed_text
    from pixrec.evaluation.evaluator import evaluate_model
    from pixrec.features import load_embeddings

    emb_dir = Path(out_dir) / "embeddings"
    if own:
        metas = {side: copy_dir(Path(paths["embeddings"]) / side, emb_dir / side)
                 for side in ("image", "text")}
    else:
        metas = {"image": run_embed_images(paths["split"], paths["raw"], emb_dir / "image", image_config),
                 "text": run_embed_text(paths["split"], emb_dir / "text", text_config)}
    fam, data = family(model), SplitData.load(paths["split"])
    embeddings = load_embeddings(emb_dir, data.n_items)
    train_metrics = (reuse_trained(Path(out_dir) / "model", paths["model"], base.model) if own else
                     train_or_reuse(model, base, None, data, embeddings, paths["negatives"],
                                    paths["tuning"], Path(out_dir) / "model", paths["model"]))
    name = f"{image_config.name}+{text_config.name}"
    rec = ranked(fam, fam.load(Path(out_dir) / "model", data, emb_dir, name=name), data, embeddings,
                 eval_config)
    result = evaluate_model(rec, data, SampledCandidates.load(paths["candidates"], data), eval_config)
    encoders = {side: {k: meta.get(k) for k in ("encoder", "arch", "weights", "random_weights", "dim")}
                for side, meta in metas.items()}
    return {**result.metrics, "model": model, "train": train_metrics, "encoders": encoders}
