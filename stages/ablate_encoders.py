"""ablate-encoders stage (one DVC matrix cell): the full model on one image × text encoder pair."""

from __future__ import annotations

from pathlib import Path

import typer

from pixrec.config import from_mapping
from stages._params import fail_cleanly, load_sections
from stages.ablate import EVAL_KEYS, eval_config

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


@app.command()
@fail_cleanly
def main(
    image: str = typer.Option(..., help="a name from ablate.encoder_grid.image"),
    text: str = typer.Option(..., help="a name from ablate.encoder_grid.text"),
    raw: Path = typer.Option(Path("data/raw")),
    split: Path = typer.Option(Path("data/split")),
    negatives: Path = typer.Option(Path("data/negatives")),
    embeddings: Path = typer.Option(Path("data/embeddings"), help="the pipeline's embeddings, reused "
                                    "with --model when this pair is the pipeline's own encoders"),
    model: Path = typer.Option(Path("models/fusion")),
    out: Path = typer.Option(Path("data/ablation_encoders/pixel-sbert")),
    metrics: Path = typer.Option(Path("metrics/ablation_encoders/pixel-sbert.json")),
    params: Path = typer.Option(Path("params.yaml")),
) -> None:
    from pixrec.ablation import grid_encoder, run_encoder_pair
    from pixrec.encoders.base import ImageEncoderConfig, TextEncoderConfig
    from pixrec.io import write_json
    from pixrec.model import ModelConfig
    from pixrec.training import TrainConfig

    args_i, args_t = f"ablate.encoder_args.{image}", f"ablate.encoder_args.{text}"
    p = load_sections(params, "encoders.image", "encoders.text", args_i, args_t, "model", "train",
                      *EVAL_KEYS)
    image_config = from_mapping(ImageEncoderConfig, grid_encoder(p["encoders.image"], image, p[args_i]),
                                args_i)
    text_config = from_mapping(TextEncoderConfig, grid_encoder(p["encoders.text"], text, p[args_t]),
                               args_t)
    # the pipeline's own encoder pair: its embeddings and trained model are these bits already
    own = (image_config == from_mapping(ImageEncoderConfig, p["encoders.image"], "encoders.image")
           and text_config == from_mapping(TextEncoderConfig, p["encoders.text"], "encoders.text"))
    result = run_encoder_pair(
        raw, split, negatives, image_config, text_config,
        from_mapping(ModelConfig, p["model"], "model"),
        from_mapping(TrainConfig, p["train"], "train"),
        eval_config(p),
        out,
        main=(embeddings, model) if own else None,
    )
    write_json(metrics, result)
    typer.echo(f"{image}+{text}: full ndcg@10={result['full']['ndcg@10']:.4f} "
               f"cold ndcg@10={result['cold']['ndcg@10']:.4f}")


if __name__ == "__main__":
    app()
