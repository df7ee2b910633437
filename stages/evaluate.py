"""evaluate stage: every baseline at the knobs the tune stage chose, and the fusion model when trained,
through the sampled, full and cold protocols, with bootstrap intervals and paired tests against the
best baseline -> metrics/evaluate.json, a dvc plot CSV and per-user Parquet."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from stages._params import fail_cleanly, read_params
from stages.tune import load_vectors, needs_embeddings

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)

PARAMS = ("eval",)  # = this stage's params in dvc.yaml


def load_params(path: Path):
    """(EvalConfig, IntervalConfig): ``eval`` and its nested ``eval.intervals``, which only this stage
    reads (the ablate and two-stage stages build EvalConfig from the other keys)."""
    from pixrec.config import ConfigError
    from pixrec.evaluation import EvalConfig, IntervalConfig

    with read_params(path, PARAMS) as p:
        section = p.raw("eval")
        if not isinstance(section, dict) or "intervals" not in section:
            raise ConfigError(f"{p.path}: eval.intervals is missing")
        section = dict(section)
        intervals = p.build(IntervalConfig, "eval.intervals", section.pop("intervals"))
        return p.build(EvalConfig, "eval", section), intervals


def _fusion_loader(model_dir: Path, data, embeddings_dir: Path):
    """A callable building the fusion recommender, or None (with the reason) when there is none."""
    if not model_dir.is_dir():
        print(f"fusion: skipped, {model_dir} does not exist (run the train stage)", file=sys.stderr)
        return None
    from pixrec.model import load_recommender

    return lambda: load_recommender(model_dir, data, embeddings_dir)


@app.command()
@fail_cleanly
def main(
    split: Path = typer.Option(Path("data/split")),
    embeddings: Path = typer.Option(Path("data/embeddings"), help="holds image/ and text/"),
    candidates: Path = typer.Option(Path("data/candidates"), help="sampled-protocol candidate sets"),
    tuning: Path = typer.Option(Path("data/tuning"), help="the baselines' chosen knobs (tune stage)"),
    model: Path = typer.Option(Path("models/fusion"), help="fusion checkpoint dir; skipped if absent"),
    out: Path = typer.Option(Path("data/eval"), help="per-user results"),
    metrics: Path = typer.Option(Path("metrics/evaluate.json")),
    plot: Path = typer.Option(Path("metrics/evaluate_plot.csv")),
    params: Path = typer.Option(Path("params.yaml")),
) -> None:
    from pixrec.config import to_mapping
    from pixrec.data.dataset import SplitData
    from pixrec.evaluation import SampledCandidates, evaluate_all, write_outputs
    from pixrec.evaluation.tuning import load_chosen
    from pixrec.numerics import environment

    config, intervals = load_params(params)
    data = SplitData.load(split)
    ctx = load_chosen(tuning, data, None)
    two_stage = list(config.two_stage_retrievers) if config.ranking == "two_stage" else []
    if needs_embeddings([*ctx.chosen, *two_stage]):
        ctx.embeddings = load_vectors(embeddings, data.n_items)
    sampled = SampledCandidates.load(candidates, data)
    results, reference = evaluate_all(ctx, sampled, config, intervals,
                                      fusion=_fusion_loader(model, data, embeddings), log=typer.echo)
    write_outputs(results, reference, intervals, out, metrics, plot,
                  {"config": to_mapping(config), "intervals": to_mapping(intervals), "chosen": ctx.chosen,
                   "numerics": environment()})
    typer.echo(f"wrote {metrics}, {plot} and {out}/ ({len(results)} models; reference {reference})")


if __name__ == "__main__":
    app()
