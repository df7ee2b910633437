"""split stage: raw PixelRec layout -> train/valid/test Parquet, user and item tables, report."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from pixrec.data.split import SplitConfig, split_raw
from stages._params import fail_cleanly, read_params

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)

PARAMS = ("split",)  # = this stage's params in dvc.yaml


def load_params(path: Path) -> SplitConfig:
    with read_params(path, PARAMS) as p:
        return p.section(SplitConfig, "split")


@app.command()
@fail_cleanly
def main(
    raw: Path = typer.Option(Path("data/raw"), help="PixelRec-layout directory"),
    out: Path = typer.Option(Path("data/split"), help="output directory"),
    params: Path = typer.Option(Path("params.yaml")),
) -> None:
    result = split_raw(raw, out, load_params(params))
    for line in result["lines"]:  # what was dropped or repaired, not only in report.json
        print(f"split: {line}", file=sys.stderr)
    typer.echo(" ".join(f"{k}={v}" for k, v in result["summary"].items()))


if __name__ == "__main__":
    app()
