"""embed-images stage: item covers -> float32 embeddings row-aligned with items.parquet, + mask, meta."""

from __future__ import annotations

from pathlib import Path

import typer

from pixrec.encoders.base import ImageEncoderConfig
from stages._params import fail_cleanly, read_params

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)

PARAMS = ("encoders.image",)  # = this stage's params in dvc.yaml


def load_params(path: Path) -> ImageEncoderConfig:
    with read_params(path, PARAMS) as p:
        return p.section(ImageEncoderConfig, "encoders.image")


@app.command()
@fail_cleanly
def main(
    raw: Path = typer.Option(Path("data/raw"), help="PixelRec-layout directory (covers/)"),
    split: Path = typer.Option(Path("data/split"), help="split directory (items.parquet)"),
    out: Path = typer.Option(Path("data/embeddings/image")),
    params: Path = typer.Option(Path("params.yaml")),
    shard: str | None = typer.Option(None, help="i/n: embed only shard i of n (0-based) into --shard-dir"),
    merge: int | None = typer.Option(None, help="n: merge shards 0..n-1 from --shard-dir into --out"),
    shard_dir: Path | None = typer.Option(None, help="shard directories (default: <out>.shards)"),
) -> None:
    """Embed all items; or one shard (``--shard i/n``), or merge n shards (``--merge n``).

    Under torchrun (WORLD_SIZE > 1), without either option: rank r embeds shard r/world, rank 0 merges.
    """
    config = load_params(params)
    from pixrec.encoders.image import run_embed_images  # torch & co: only when the stage runs
    from pixrec.encoders.shards import describe_shard, dispatch

    def run(**mode) -> dict:
        return run_embed_images(split, raw, out, config, shard_dir=shard_dir, **mode)

    kind, meta = dispatch(run, shard, merge)
    if kind == "shard":
        typer.echo(describe_shard(meta, "images"))
        return
    reasons = ", ".join(f"{k}: {v['count']}" for k, v in meta["masked"].items()) or "none"
    rate = f", {meta['items_per_s']:.0f} images/s" if meta.get("items_per_s") else ""
    typer.echo(f"{meta['encoder']} -> {out}: {meta['n_items']} items x {meta['dim']}, "
               f"masked {meta['n_masked']} ({reasons}){rate}"
               + ("  [RANDOM WEIGHTS]" if meta["random_weights"] else ""))


if __name__ == "__main__":
    app()
