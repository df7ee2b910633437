"""bench: the benchmark figures (docs/scale.md) for one workspace (not a DVC stage: it measures the
pipeline, so its output would never hash the same twice). Prints them and writes a JSON file, e.g.
metrics/bench_default.json.

    pixrec bench --out metrics/bench_default.json --stage-log stages.jsonl   # after a logged repro
    PIXREC_STAGE_LOG=stages.jsonl dvc repro --force                          # makes that log
    pixrec bench --repro --out metrics/bench_default.json                    # or both in one go
"""

from __future__ import annotations

from pathlib import Path

import typer

from stages._params import fail_cleanly, read_params

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)

PARAMS = ("encoders.image", "encoders.text", "fusion", "two_tower", "recommend")
MODELS = ("fusion", "two_tower")


def load_params(path: Path):
    """(ImageEncoderConfig, TextEncoderConfig, {model: its params section}, RecommendConfig)."""
    from pixrec.encoders.base import ImageEncoderConfig, TextEncoderConfig
    from pixrec.models import family
    from pixrec.serve.stage import RecommendConfig

    with read_params(path, PARAMS) as p:
        return (p.section(ImageEncoderConfig, "encoders.image"),
                p.section(TextEncoderConfig, "encoders.text"),
                {name: p.section(family(name).section, name) for name in MODELS},
                p.section(RecommendConfig, "recommend"))


@app.command()
@fail_cleanly
def main(
    out: Path = typer.Option(..., help="JSON file to write, e.g. metrics/bench_default.json"),
    workspace: Path = typer.Option(Path("."), help="pipeline checkout whose data/ and models/ exist"),
    stage_log: Path | None = typer.Option(None, help="JSON lines the stages wrote to $PIXREC_STAGE_LOG"),
    repro: bool = typer.Option(False, help="run `dvc repro --force` in the workspace first, logged"),
    parts: list[str] = typer.Option(["stages", "embed", "train", "ranking", "recommend", "fusion", "serving"],
                                    "--part", help="also: text-backends (every encoders.text.backend vs "
                                                   "fp32 torch)"),
    text_items: Path | None = typer.Option(None, help="text-backends: items.parquet or item_info.csv to "
                                                      "sample --n-texts texts from (default: the split's)"),
    n_images: int = typer.Option(512), n_texts: int = typer.Option(512),
    serving_runs: int = typer.Option(3, help="serving: runs of each command (median reported)"),
    train_steps: int = typer.Option(30), fusion_users: int = typer.Option(32),
    ranking_users: int = typer.Option(0, help="0 = every user of the split"),
    params: Path = typer.Option(Path("params.yaml")),
) -> None:
    from pixrec.atomic import write_json
    from pixrec.bench.suite import BenchOptions, run_benchmark

    params = params if params.is_absolute() or params.exists() else workspace / params
    options = BenchOptions(tuple(parts), n_images, n_texts, train_steps=train_steps,
                           ranking_users=ranking_users, fusion_users=fusion_users, serving_runs=serving_runs,
                           stage_log=stage_log, repro=repro, text_items=text_items)
    result = run_benchmark(workspace, *load_params(params), options, log=typer.echo)
    write_json(out, result)
    typer.echo(f"-> {out}")


if __name__ == "__main__":
    app()
