"""download stage: ``data.*`` -> ``data/raw`` in PixelRec layout (synthetic, local copy or URLs)."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from pixrec.data.sources import DataConfig, materialise
from stages._params import fail_cleanly, read_params

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)

PARAMS = ("data",)  # = this stage's params in dvc.yaml


def load_params(path: Path) -> DataConfig:
    with read_params(path, PARAMS) as p:
        return p.section(DataConfig, "data")


@app.command()
@fail_cleanly
def main(
    out: Path = typer.Option(Path("data/raw"), help="output directory (replaced atomically)"),
    params: Path = typer.Option(Path("params.yaml")),
) -> None:
    summary = materialise(load_params(params), out)
    for line in summary.get("taken", []):  # which of the user's files was taken for what
        typer.echo(f"download: {line}")
    for warning in summary.get("warnings", []):
        print(f"warning: {warning}", file=sys.stderr)
    typer.echo(" ".join(f"{k}={v}" for k, v in summary.items() if not isinstance(v, dict | list)))


if __name__ == "__main__":
    app()
