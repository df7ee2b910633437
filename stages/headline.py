"""headline stage: metrics/evaluate.json -> metrics/headline.json, each model's NDCG@10 on the full,
cold and sampled protocols with its interval, the headline model first (results at a glance)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from stages._params import fail_cleanly, read_params

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)

PARAMS = ("models.headline",)  # = this stage's params in dvc.yaml


def load_params(path: Path) -> str:
    with read_params(path, PARAMS) as p:
        return p.value("models.headline", str)


@app.command()
@fail_cleanly
def main(
    evaluate: Path = typer.Option(Path("metrics/evaluate.json"), help="the evaluate stage's metrics"),
    out: Path = typer.Option(Path("metrics/headline.json")),
    params: Path = typer.Option(Path("params.yaml")),
) -> None:
    from pixrec.errors import InputError
    from pixrec.evaluation.headline import headline_metrics, write_headline

    headline = load_params(params)
    if not evaluate.is_file():
        raise InputError(f"{evaluate}: missing; run dvc repro evaluate")
    table = headline_metrics(json.loads(evaluate.read_text(encoding="utf-8")), headline, evaluate)
    write_headline(out, table)
    typer.echo(f"wrote {out} ({len(next(iter(table.values())))} models, {headline} first)")


if __name__ == "__main__":
    app()
