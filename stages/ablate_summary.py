"""ablate-summary stage: merge the ablation cells into metrics/ablation.json and a plot table."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from stages._params import fail_cleanly, read_params

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)

PLOT_METRICS = ("ndcg@10", "recall@10", "mrr@10")
PARAMS = ("ablate.variants", "ablate.encoder_grid", "models.headline")  # = this stage's params in dvc.yaml
RERANK = "rerank"  # a variant read from the evaluate stage's row <headline>+rerank, not from a cell


def load_params(path: Path):
    """(variant names, EncoderGrid, the headline model's name)."""
    from pixrec.ablation import EncoderGrid

    with read_params(path, PARAMS) as p:
        return (p.value("ablate.variants", list[str]), p.section(EncoderGrid, "ablate.encoder_grid"),
                p.value("models.headline", str))


@app.command()
@fail_cleanly
def main(
    cells: Path = typer.Option(Path("metrics/ablation")),
    encoder_cells: Path | None = typer.Option(None, help="cells of the encoder grid, if any"),
    out: Path = typer.Option(Path("metrics/ablation.json")),
    encoders_out: Path = typer.Option(Path("metrics/ablation_encoders.json")),
    evaluate: Path = typer.Option(Path("metrics/evaluate.json"), help="holds the re-ranked headline row"),
    plot: Path = typer.Option(Path("metrics/ablation_plot.csv")),
    params: Path = typer.Option(Path("params.yaml")),
) -> None:
    from pixrec.atomic import atomic_file, write_json
    from pixrec.errors import InputError

    variants, grid, headline = load_params(params)
    missing = [v for v in variants if not (cells / f"{v}.json").is_file()]
    if missing:
        raise InputError(f"{cells}: no result for variant(s) {missing}; run `dvc repro ablate`")
    summary = {v: json.loads((cells / f"{v}.json").read_text()) for v in variants}
    rows = json.loads(evaluate.read_text()) if evaluate.is_file() else {}
    if f"{headline}+{RERANK}" in rows:  # eval.rerank.top_n > 0: the pair model re-ranked the headline
        summary[RERANK] = {**rows[f"{headline}+{RERANK}"], "variant": {"eval.rerank": "pair model"}}
    write_json(out, summary)
    if encoder_cells is not None:
        pairs = [f"{i}-{t}" for i in grid.image for t in grid.text]
        missing = [c for c in pairs if not (encoder_cells / f"{c}.json").is_file()]
        if missing:
            raise InputError(f"{encoder_cells}: no result for encoder pair(s) {missing}; "
                                    f"run `dvc repro ablate-encoders`")
        write_json(encoders_out, {c: json.loads((encoder_cells / f"{c}.json").read_text()) for c in pairs})
    rows = ["variant,protocol," + ",".join(PLOT_METRICS)]
    for v, result in summary.items():
        for protocol in ("sampled", "full", "cold"):
            vals = result.get(protocol, {})
            cells_ = ",".join(f"{vals.get(m, float('nan')):.6f}" for m in PLOT_METRICS)
            rows.append(f"{v},{protocol},{cells_}")
    with atomic_file(plot) as tmp:
        tmp.write_text("\n".join(rows) + "\n")
    typer.echo(f"{len(summary)} variants -> {out}")


if __name__ == "__main__":
    app()
