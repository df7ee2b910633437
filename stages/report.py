"""report stage: metrics, per-user results, model and covers -> reports/index.html (+ index.md)."""

from __future__ import annotations

from pathlib import Path

import typer

from stages._params import fail_cleanly, read_params

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)

PARAMS = ("report",)  # = this stage's params in dvc.yaml


def load_params(path: Path):
    from pixrec.report import ReportConfig

    with read_params(path, PARAMS) as p:
        return p.section(ReportConfig, "report")


@app.command()
@fail_cleanly
def main(
    metrics: Path = typer.Option(Path("metrics"), help="holds evaluate.json, ablation.json, train.json"),
    split: Path = typer.Option(Path("data/split")),
    raw: Path = typer.Option(Path("data/raw"), help="PixelRec layout: covers and download.json"),
    model: Path = typer.Option(Path("models/fusion")),
    embeddings: Path = typer.Option(Path("data/embeddings")),
    eval_dir: Path = typer.Option(Path("data/eval"), "--eval", help="per-user results Parquet"),
    out: Path = typer.Option(Path("reports"), help="output directory"),
    readme: Path | None = typer.Option(
        None, help="also rewrite this file's results section (between the results markers)"),
    dataset_label: str | None = typer.Option(
        None, help="how to name the dataset; default from data/raw/download.json"),
    params: Path = typer.Option(Path("params.yaml")),
) -> None:
    from pixrec.report import build_report

    config = load_params(params)
    result = build_report(metrics, split, raw, model, embeddings, eval_dir, out, config,
                          readme=readme, dataset_label=dataset_label)
    typer.echo(" ".join(f"{k}={v}" for k, v in result.items()))


if __name__ == "__main__":
    app()
