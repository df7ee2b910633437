"""report stage: metrics, the evaluator's per-user results, training logs and covers
-> reports/index.html (+ index.md). Loads no model: every rank shown is the evaluator's."""

from __future__ import annotations

from pathlib import Path

import typer

from stages._params import fail_cleanly, read_params

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)

PARAMS = ("report", "models.fit", "models.headline")  # = this stage's params in dvc.yaml


def load_params(path: Path):
    """(ReportConfig, Lineup): the report's own section, and which models were fitted and lead."""
    from pixrec.report.build import Lineup, ReportConfig

    with read_params(path, PARAMS) as p:
        return (p.section(ReportConfig, "report"),
                Lineup(p.value("models.fit", list[str]), p.value("models.headline", str)))


@app.command()
@fail_cleanly
def main(
    metrics: Path = typer.Option(Path("metrics"), help="holds evaluate.json, tuning.json, ablation.json, "
                                 "two_stage.json and train/<model>.json"),
    live: Path = typer.Option(Path("dvclive"), help="dvclive logs of the train stages, <live>/<model>/"),
    split: Path = typer.Option(Path("data/split")),
    raw: Path = typer.Option(Path("data/raw"), help="PixelRec layout: covers and download.json"),
    embeddings: Path = typer.Option(Path("data/embeddings"), help="read only to name a missing modality"),
    eval_dir: Path = typer.Option(Path("data/eval"), "--eval", help="the evaluator's ranks and top-10 lists"),
    out: Path = typer.Option(Path("reports"), help="output directory"),
    readme: Path | None = typer.Option(
        None, help="also rewrite this file's results section (between the results markers)"),
    dataset_label: str | None = typer.Option(
        None, help="how to name the dataset; default from data/raw/download.json"),
    params: Path = typer.Option(Path("params.yaml")),
) -> None:
    from pixrec.report.build import ReportInputs, build_report

    config, lineup = load_params(params)
    src = ReportInputs(metrics, live, split, raw, embeddings, eval_dir)
    result = build_report(src, out, config, lineup, readme=readme, dataset_label=dataset_label)
    typer.echo(" ".join(f"{k}={v}" for k, v in result.items()))


if __name__ == "__main__":
    app()
