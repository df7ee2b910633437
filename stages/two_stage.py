"""two-stage stage: exact vs two-stage full ranking of the trained fusion model for each N in
eval.two_stage_sweep -> metrics/two_stage.json (the table in the README)."""

from __future__ import annotations

from pathlib import Path

import typer

from pixrec.config import from_mapping
from stages._params import fail_cleanly, load_sections

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


@app.command()
@fail_cleanly
def main(
    split: Path = typer.Option(Path("data/split")),
    embeddings: Path = typer.Option(Path("data/embeddings")),
    model: Path = typer.Option(Path("models/fusion")),
    metrics: Path = typer.Option(Path("metrics/two_stage.json")),
    params: Path = typer.Option(Path("params.yaml")),
) -> None:
    from pixrec.data.dataset import SplitData
    from pixrec.evaluation import EvalConfig
    from pixrec.evaluation.sweep import two_stage_sweep
    from pixrec.features import load_embeddings
    from pixrec.io import write_json
    from pixrec.model import load_recommender

    config = from_mapping(EvalConfig, load_sections(params, "eval")["eval"], "eval")
    data = SplitData.load(split)
    emb = {side: (e.vectors, e.mask) for side, e in load_embeddings(embeddings, data.n_items).items()}
    result = two_stage_sweep(load_recommender(model, data, embeddings), data, emb, config, log=typer.echo)
    write_json(metrics, result)
    typer.echo(f"-> {metrics}")


if __name__ == "__main__":
    app()
