"""tune stage: every baseline of baselines.names fitted on train at each combination of its knobs and
scored on validation (never test) -> data/tuning/chosen.json (what evaluate refits) and
metrics/tuning.json (chosen knobs and the validation NDCG@10 curve per baseline)."""

from __future__ import annotations

from pathlib import Path

import typer

from stages._params import fail_cleanly, read_params

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)

PARAMS = ("baselines",)  # = this stage's params in dvc.yaml


def load_params(path: Path):
    from pixrec.evaluation.tuning import TuneConfig

    with read_params(path, PARAMS) as p:
        return p.section(TuneConfig, "baselines")


def needs_embeddings(names: list[str]) -> bool:
    """Whether a baseline of ``names`` reads item content vectors (else they are not loaded)."""
    import pixrec.baselines.catalog  # noqa: F401  (registers every baseline)
    from pixrec.baselines.base import BASELINES

    return any(BASELINES.get(n).needs_embeddings for n in names)


@app.command()
@fail_cleanly
def main(
    split: Path = typer.Option(Path("data/split"), help="only train, valid, users and items are read"),
    embeddings: Path = typer.Option(Path("data/embeddings"), help="holds image/ and text/"),
    out: Path = typer.Option(Path("data/tuning")),
    metrics: Path = typer.Option(Path("metrics/tuning.json")),
    params: Path = typer.Option(Path("params.yaml")),
) -> None:
    from pixrec.config import to_mapping
    from pixrec.evaluation.tuning import load_validation_split, tune_all, write_tuning
    from pixrec.features import load_embeddings
    from pixrec.numerics import environment

    config = load_params(params)
    view = load_validation_split(split)
    emb = load_embeddings(embeddings, view.n_items) if needs_embeddings(config.names) else None
    tuned = tune_all(view, emb, config, log=typer.echo)
    write_tuning(tuned, out, metrics, {"config": to_mapping(config), "numerics": environment()})
    typer.echo(f"wrote {out}/ and {metrics} ({len(tuned.chosen)} baselines)")


if __name__ == "__main__":
    app()
