"""evaluate stage: every baseline at the knobs the tune stage chose, and every model of ``models.fit``
(trained by its train stage into models/<name>), through the sampled, full and cold protocols, with
bootstrap intervals and paired tests against the best baseline -> metrics/evaluate.json, a dvc plot
CSV and per-user Parquet."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from stages._params import fail_cleanly, read_params
from stages.tune import needs_embeddings

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)

PARAMS = ("eval", "models.fit", "models.headline")  # = this stage's params in dvc.yaml


def load_params(path: Path):
    """(EvalConfig, IntervalConfig, models): ``eval`` and its nested ``eval.intervals`` and
    ``eval.rerank``, which only this stage reads (the ablate and two-stage stages build EvalConfig
    from the other keys), and ``models`` = (``models.fit``, ``models.headline``, ``eval.rerank``)."""
    from pixrec.config import ConfigError
    from pixrec.evaluation.config import EvalConfig
    from pixrec.evaluation.intervals import IntervalConfig
    from pixrec.models import RerankConfig

    with read_params(path, PARAMS) as p:
        section = p.raw("eval")
        for apart in ("intervals", "rerank"):
            if not isinstance(section, dict) or apart not in section:
                raise ConfigError(f"{p.path}: eval.{apart} is missing")
        section = dict(section)
        intervals = p.build(IntervalConfig, "eval.intervals", section.pop("intervals"))
        rerank = p.build(RerankConfig, "eval.rerank", section.pop("rerank"))
        models = (p.value("models.fit", list[str]), p.value("models.headline", str), rerank)
        return p.build(EvalConfig, "eval", section), intervals, models


def trained_models(models: tuple, models_dir: Path, data, embeddings_dir: Path) -> list:
    """The models of ``models.fit`` that have a checkpoint under ``models_dir`` (the others are
    skipped with the reason: a workspace where only the baselines ran still evaluates), and the
    headline re-ranked by the pair model (``eval.rerank``) when both are there. Each loads as it is
    ranked except a pair model under ``eval.ranking: two_stage``: :func:`main` puts it behind its
    retrievers (``pixrec.evaluation.two_stage.two_stage_models``)."""
    from pixrec.evaluation.evaluator import TrainedModel
    from pixrec.models import family, reranked, train_stage

    names, headline, rerank = models
    out, loaders = [], {}
    for name in names:
        fam, where = family(name), models_dir / name
        if not where.is_dir():
            print(f"{name}: skipped, {where} does not exist (run dvc repro {train_stage(name)})",
                  file=sys.stderr)
            continue
        loaders[name] = lambda f=fam, w=where, n=name: f.load(w, data, embeddings_dir, name=n)
        out.append(TrainedModel(name, loaders[name], fam.pairwise))
    # the first pair model of models.fit re-ranks the headline (fusion in the default pipeline)
    pair = next((m.name for m in out if m.pairwise and m.name != headline), None)
    if rerank.top_n and headline in loaders and pair is not None:
        load = lambda: reranked(loaders[headline](), loaders[pair](), rerank.top_n, data)  # noqa: E731
        out.append(TrainedModel(f"{headline}+rerank", load, False))
    return out


@app.command()
@fail_cleanly
def main(
    split: Path = typer.Option(Path("data/split")),
    embeddings: Path = typer.Option(Path("data/embeddings"), help="holds image/ and text/"),
    candidates: Path = typer.Option(Path("data/candidates"), help="sampled-protocol candidate sets"),
    tuning: Path = typer.Option(Path("data/tuning"), help="the baselines' chosen knobs (tune stage)"),
    models: Path = typer.Option(Path("models"), help="holds models/<name> for each of models.fit"),
    out: Path = typer.Option(Path("data/eval"), help="per-user results"),
    metrics: Path = typer.Option(Path("metrics/evaluate.json")),
    plot: Path = typer.Option(Path("metrics/evaluate_plot.csv")),
    params: Path = typer.Option(Path("params.yaml")),
) -> None:
    from pixrec.config import to_mapping
    from pixrec.data.dataset import SplitData
    from pixrec.evaluation.candidates import SampledCandidates
    from pixrec.evaluation.evaluator import evaluate_all
    from pixrec.evaluation.output import write_outputs
    from pixrec.evaluation.tuning import load_chosen
    from pixrec.evaluation.two_stage import two_stage_models
    from pixrec.features import load_embeddings
    from pixrec.numerics import environment

    config, intervals, models_ = load_params(params)
    data = SplitData.load(split)
    ctx = load_chosen(tuning, data, None)
    two_stage = list(config.two_stage_retrievers) if config.ranking == "two_stage" else []
    if needs_embeddings([*ctx.chosen, *two_stage]):
        ctx.embeddings = load_embeddings(embeddings, data.n_items)
    sampled = SampledCandidates.load(candidates, data)
    # pair models behind their retrievers (eval.ranking: two_stage) before the evaluator sees them
    trained = two_stage_models(trained_models(models_, models, data, embeddings), data, ctx.embeddings,
                               config, log=typer.echo)
    results, reference = evaluate_all(ctx, sampled, config, intervals, trained, log=typer.echo)
    write_outputs(results, reference, intervals, out, metrics, plot,
                  {"config": to_mapping(config), "intervals": to_mapping(intervals), "chosen": ctx.chosen,
                   "numerics": environment()}, headline=models_[1])
    typer.echo(f"wrote {metrics}, {plot} and {out}/ ({len(results)} models; reference {reference})")


if __name__ == "__main__":
    app()
