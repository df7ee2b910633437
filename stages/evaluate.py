"""evaluate stage: every baseline in eval.baselines, and the fusion model when trained, through the
sampled, full and cold protocols -> metrics/evaluate.json, a dvc plot CSV and per-user Parquet."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from stages._params import fail_cleanly, read_params

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)

PARAMS = ("eval",)  # = this stage's params in dvc.yaml


def load_params(path: Path):
    from pixrec.evaluation import EvalConfig

    with read_params(path, PARAMS) as p:
        return p.section(EvalConfig, "eval")


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
    model: Path = typer.Option(Path("models/fusion"), help="fusion checkpoint dir; skipped if absent"),
    out: Path = typer.Option(Path("data/eval"), help="per-user results"),
    metrics: Path = typer.Option(Path("metrics/evaluate.json")),
    plot: Path = typer.Option(Path("metrics/evaluate_plot.csv")),
    params: Path = typer.Option(Path("params.yaml")),
) -> None:
    from pixrec.config import to_mapping
    from pixrec.data.dataset import SplitData
    from pixrec.evaluation import SampledCandidates, evaluate_all, write_outputs
    from pixrec.numerics import environment

    config = load_params(params)
    data = SplitData.load(split)
    emb = None
    needs_content = "content_knn" in config.baselines or (
        config.ranking == "two_stage" and "content_knn" in config.two_stage_retrievers)
    if needs_content:
        from pixrec.features import load_embeddings

        emb = {side: (e.vectors, e.mask) for side, e in load_embeddings(embeddings, data.n_items).items()}
    sampled = SampledCandidates.load(candidates, data)
    results = evaluate_all(data, emb, sampled, config, fusion=_fusion_loader(model, data, embeddings),
                           log=typer.echo)
    write_outputs(results, out, metrics, plot, {"config": to_mapping(config), "numerics": environment()})
    typer.echo(f"wrote {metrics}, {plot} and {out}/ ({len(results)} models)")


if __name__ == "__main__":
    app()
