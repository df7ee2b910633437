"""embed-text stage: item title/tag/description -> float32 embeddings row-aligned with items.parquet."""

from __future__ import annotations

from pathlib import Path

import typer

from pixrec.encoders.base import TextEncoderConfig
from stages._params import fail_cleanly, read_params

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)

PARAMS = ("encoders.text",)  # = this stage's params in dvc.yaml


def load_params(path: Path) -> TextEncoderConfig:
    with read_params(path, PARAMS) as p:
        return p.section(TextEncoderConfig, "encoders.text")


@app.command()
@fail_cleanly
def main(
    split: Path = typer.Option(Path("data/split"), help="split directory (items.parquet)"),
    out: Path = typer.Option(Path("data/embeddings/text")),
    params: Path = typer.Option(Path("params.yaml")),
    shard: str | None = typer.Option(None, help="i/n: embed only shard i of n (0-based) into --shard-dir"),
    merge: int | None = typer.Option(None, help="n: merge shards 0..n-1 from --shard-dir into --out"),
    shard_dir: Path | None = typer.Option(None, help="shard directories (default: <out>.shards)"),
) -> None:
    """Embed all items; or one shard (``--shard i/n``), or merge n shards (``--merge n``).

    Under torchrun (WORLD_SIZE > 1), without either option: rank r embeds shard r/world, rank 0 merges.
    """
    config = load_params(params)
    from pixrec.encoders.shards import describe_shard, dispatch
    from pixrec.encoders.text import run_embed_text  # torch & co: only when the stage runs

    def run(**mode) -> dict:
        return run_embed_text(split, out, config, shard_dir=shard_dir, **mode)

    kind, meta = dispatch(run, shard, merge)
    if kind == "shard":
        typer.echo(describe_shard(meta, "texts"))
        return
    reasons = ", ".join(f"{k}: {v['count']}" for k, v in meta["masked"].items()) or "none"
    rate = f", {meta['texts_per_s']:.0f} texts/s" if meta.get("texts_per_s") else ""
    typer.echo(f"{meta['encoder']} -> {out}: {meta['n_items']} items x {meta['dim']}, "
               f"masked {meta['n_masked']} ({reasons}){rate}")


if __name__ == "__main__":
    app()
