"""embed-text stage: item title/tag/description -> float32 embeddings row-aligned with items.parquet."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from pixrec.config import from_mapping
from pixrec.encoders.base import TextEncoderConfig
from stages._params import fail_cleanly, load_sections

# Before torch loads OpenMP: idle OpenMP threads sleep instead of spinning. On 2 shared cores a
# spinning thread starves the DataLoader worker and the neighbours (measured: bench/embed.py).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


@app.command()
@fail_cleanly
def main(
    split: Path = typer.Option(Path("data/split"), help="split directory (items.parquet)"),
    out: Path = typer.Option(Path("data/embeddings/text")),
    params: Path = typer.Option(Path("params.yaml")),
) -> None:
    config = from_mapping(TextEncoderConfig, load_sections(params, "encoders.text")["encoders.text"],
                          "encoders.text")
    from pixrec.encoders.text import run_embed_text  # torch & co: only when the stage runs

    meta = run_embed_text(split, out, config)
    reasons = ", ".join(f"{k}: {v['count']}" for k, v in meta["masked"].items()) or "none"
    typer.echo(f"{meta['encoder']} -> {out}: {meta['n_items']} items x {meta['dim']}, "
               f"masked {meta['n_masked']} ({reasons}), {meta['texts_per_s']:.0f} texts/s")


if __name__ == "__main__":
    app()
