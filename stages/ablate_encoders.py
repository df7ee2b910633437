"""ablate-encoders stage (one DVC matrix cell): the full model on one image × text encoder pair."""

from __future__ import annotations

from pathlib import Path

import typer

from stages._params import declared, fail_cleanly, read_params
from stages.ablate import EVAL_KEYS, eval_config

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)

# = dvc.yaml, {image} / {text} = ${item.image} / ${item.text}
PARAMS = ("encoders.image", "encoders.text", "ablate.encoder_args.{image}", "ablate.encoder_args.{text}",
          "model", "train", *EVAL_KEYS)


def load_params(path: Path, image: str, text: str):
    """(cell's image config, text config, whether they are the pipeline's own, ModelConfig,
    TrainConfig, EvalConfig) for the cell ``image`` × ``text``."""
    from pixrec.ablation import grid_encoder
    from pixrec.encoders.base import ImageEncoderConfig, TextEncoderConfig
    from pixrec.model import ModelConfig
    from pixrec.training import TrainConfig

    with read_params(path, declared(PARAMS, image=image, text=text)) as p:
        configs = {}
        for side, cls, name in (("image", ImageEncoderConfig, image), ("text", TextEncoderConfig, text)):
            base, args = p.raw(f"encoders.{side}"), f"ablate.encoder_args.{name}"
            own = p.section(cls, f"encoders.{side}")  # the pipeline's own, also checks the section
            cell = p.build(cls, args, grid_encoder(base, name, p.raw(args)))
            configs[side] = (cell, cell == own)
        return (configs["image"][0], configs["text"][0], configs["image"][1] and configs["text"][1],
                p.section(ModelConfig, "model"), p.section(TrainConfig, "train"), eval_config(p))


@app.command()
@fail_cleanly
def main(
    image: str = typer.Option(..., help="a name from ablate.encoder_grid.image"),
    text: str = typer.Option(..., help="a name from ablate.encoder_grid.text"),
    raw: Path = typer.Option(Path("data/raw")),
    split: Path = typer.Option(Path("data/split")),
    negatives: Path = typer.Option(Path("data/negatives")),
    candidates: Path = typer.Option(Path("data/candidates"), help="sampled-protocol candidate sets"),
    embeddings: Path = typer.Option(Path("data/embeddings"), help="the pipeline's embeddings, reused "
                                    "with --model when this pair is the pipeline's own encoders"),
    model: Path = typer.Option(Path("models/fusion")),
    out: Path = typer.Option(Path("data/ablation_encoders/pixel-sbert")),
    metrics: Path = typer.Option(Path("metrics/ablation_encoders/pixel-sbert.json")),
    params: Path = typer.Option(Path("params.yaml")),
) -> None:
    from pixrec.ablation import run_encoder_pair
    from pixrec.io import write_json

    image_config, text_config, own, model_config, train_config, eval_config_ = load_params(
        params, image, text)
    # the pipeline's own encoder pair: its embeddings and trained model are these bits already
    result = run_encoder_pair(
        raw, split, negatives, candidates, image_config, text_config, model_config, train_config,
        eval_config_, out, main=(embeddings, model) if own else None,
    )
    write_json(metrics, result)
    typer.echo(f"{image}+{text}: full ndcg@10={result['full']['ndcg@10']:.4f} "
               f"cold ndcg@10={result['cold']['ndcg@10']:.4f}")


if __name__ == "__main__":
    app()
