"""embed-images stage: item covers -> float32 embeddings row-aligned with items.parquet, + mask, meta."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from pixrec.config import from_mapping
from pixrec.encoders.base import ImageEncoderConfig
from stages._params import fail_cleanly, load_sections

# Before torch loads OpenMP: idle OpenMP threads sleep instead of spinning. On 2 shared cores a
# spinning thread starves the DataLoader worker and the neighbours (measured: bench/embed.py).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


@app.command()
@fail_cleanly
def main(
    raw: Path = typer.Option(Path("data/raw"), help="PixelRec-layout directory (covers/)"),
    split: Path = typer.Option(Path("data/split"), help="split directory (items.parquet)"),
    out: Path = typer.Option(Path("data/embeddings/image")),
    params: Path = typer.Option(Path("params.yaml")),
) -> None:
    config = from_mapping(ImageEncoderConfig, load_sections(params, "encoders.image")["encoders.image"],
                          "encoders.image")
    from pixrec.encoders.image import run_embed_images  # torch & co: only when the stage runs

    meta = run_embed_images(split, raw, out, config)
    reasons = ", ".join(f"{k}: {v['count']}" for k, v in meta["masked"].items()) or "none"
    typer.echo(f"{meta['encoder']} -> {out}: {meta['n_items']} items x {meta['dim']}, "
               f"masked {meta['n_masked']} ({reasons}), {meta['items_per_s']:.0f} images/s"
               + ("  [RANDOM WEIGHTS]" if meta["random_weights"] else ""))


if __name__ == "__main__":
    app()
