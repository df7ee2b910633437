"""Recommenders by the names params.yaml uses: a trained model (a name of the model registry
:mod:`pixrec.models`, i.e. of ``models.fit``: ``models/<name>/``, loaded as written by its
``train-<name>`` stage) or a baseline (fitted on train at the knobs the tune stage chose, as the evaluate
stage does). Both end behind the one scoring interface, so everything downstream is model-agnostic."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from pixrec.data.dataset import SplitData
from pixrec.errors import InputError
from pixrec.models import MODELS, family, train_stage
from pixrec.scoring import Recommender


def not_trained(name: str, models_dir: Path) -> InputError:
    return InputError(f"{Path(models_dir) / name}: model {name!r} is not trained; "
                      f"run dvc repro {train_stage(name)}")


def load_trained(name: str, models_dir: Path, data: SplitData, embeddings_dir: Path) -> Recommender:
    """Trained model ``name`` (a :data:`pixrec.models.MODELS` name) from ``models_dir/<name>/``
    behind the scoring interface."""
    fam, model_dir = family(name), Path(models_dir) / name
    if not model_dir.is_dir():
        raise not_trained(name, models_dir)
    return fam.load(model_dir, data, embeddings_dir, name=name)


def recommenders(
    names: list[str], data: SplitData, models_dir: Path, embeddings_dir: Path, tuning_dir: Path
) -> Iterator[Recommender]:
    """Each of ``names`` in order, built when reached and dropped by the caller after use.

    Every name is checked before any work: a trained model's directory, a baseline's chosen knobs.
    """
    # every baseline, the tuner's files and the embeddings (torch): only when recommenders are built,
    # so `pixrec recommend --user`, which reads the stored lists, never imports them
    import pixrec.baselines.catalog  # noqa: F401  (registers every baseline)
    from pixrec.baselines.base import BASELINES
    from pixrec.evaluation.tuning import load_chosen
    from pixrec.features import load_embeddings

    unknown = [n for n in names if n not in MODELS and n not in BASELINES]
    if unknown:
        raise InputError(f"recommend: unknown model {unknown[0]!r}; trained models are {MODELS.names()}, "
                         f"baselines {BASELINES.names()}")
    for name in names:
        if name in MODELS and not (Path(models_dir) / name).is_dir():
            raise not_trained(name, models_dir)
    baselines = [n for n in names if n not in MODELS]
    ctx = load_chosen(tuning_dir, data, None) if baselines else None
    if ctx is not None:
        untuned = [n for n in baselines if n not in ctx.chosen]
        if untuned:
            raise InputError(f"recommend: baseline {untuned[0]!r} was not tuned ({tuning_dir} has "
                             f"{list(ctx.chosen)}); add it to baselines.names and run dvc repro tune")
        parts = {n: [n, *BASELINES.get(n).components(ctx.chosen[n])] for n in baselines}
        if any(BASELINES.get(p).needs_embeddings for ps in parts.values() for p in ps):
            ctx.embeddings = load_embeddings(embeddings_dir, data.n_items)
    for name in names:
        if name in MODELS:
            yield load_trained(name, models_dir, data, embeddings_dir)
            continue
        yield ctx.component(name)
        for part in parts[name]:  # a hybrid's components too
            ctx.release(part)
