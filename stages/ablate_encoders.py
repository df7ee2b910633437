"""ablate-encoders stage (one DVC matrix cell): the headline model on one image × text encoder pair."""

from __future__ import annotations

from pathlib import Path

import typer

from stages._params import declared, fail_cleanly, read_params
from stages.ablate import EVAL_KEYS, eval_config

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)

# = dvc.yaml, {image} / {text} = ${item.image} / ${item.text}, {model} = ${models.headline}
PARAMS = ("encoders.image", "encoders.text", "ablate.encoder_args.{image}", "ablate.encoder_args.{text}",
          "{model}", *EVAL_KEYS)


def load_params(path: Path, model: str, image: str, text: str):
    """(cell's image config, text config, whether they are the pipeline's own, the model's section,
    EvalConfig) for the cell ``image`` × ``text``."""
    from pixrec.ablation import grid_encoder
    from pixrec.encoders.base import ImageEncoderConfig, TextEncoderConfig
    from pixrec.models import family

    with read_params(path, declared(PARAMS, model=model, image=image, text=text), headline=model) as p:
        configs = {}
        for side, cls, name in (("image", ImageEncoderConfig, image), ("text", TextEncoderConfig, text)):
            base, args = p.raw(f"encoders.{side}"), f"ablate.encoder_args.{name}"
            own = p.section(cls, f"encoders.{side}")  # the pipeline's own, also checks the section
            cell = p.build(cls, args, grid_encoder(base, name, p.raw(args)))
            configs[side] = (cell, cell == own)
        return (configs["image"][0], configs["text"][0], configs["image"][1] and configs["text"][1],
                p.section(family(model).section, model), eval_config(p))


@app.command()
@fail_cleanly
def main(
    model: str = typer.Option(..., help="the headline model (models.headline)"),
    image: str = typer.Option(..., help="a name from ablate.encoder_grid.image"),
    text: str = typer.Option(..., help="a name from ablate.encoder_grid.text"),
    raw: Path = typer.Option(Path("data/raw")),
    split: Path = typer.Option(Path("data/split")),
    negatives: Path = typer.Option(Path("data/negatives")),
    candidates: Path = typer.Option(Path("data/candidates"), help="sampled-protocol candidate sets"),
    tuning: Path = typer.Option(Path("metrics/tuning.json"), help="the tune stage's metrics: the yardstick "
                                "a retrained two-tower's cold lift is chosen against"),
    embeddings: Path = typer.Option(Path("data/embeddings"), help="the pipeline's embeddings, reused "
                                    "with --model when this pair is the pipeline's own encoders"),
    models: Path = typer.Option(Path("models"), help="models/<model>: reused for the pipeline's own pair"),
    out: Path = typer.Option(Path("data/ablation_encoders/pixel-sbert")),
    metrics: Path = typer.Option(Path("metrics/ablation_encoders/pixel-sbert.json")),
    params: Path = typer.Option(Path("params.yaml")),
) -> None:
    from pixrec.ablation import run_encoder_pair
    from pixrec.atomic import write_json

    image_config, text_config, own, base, config = load_params(params, model, image, text)
    paths = {"raw": raw, "split": split, "embeddings": embeddings, "negatives": negatives,
             "candidates": candidates, "tuning": tuning, "model": models / model}
    # the pipeline's own encoder pair: its embeddings and trained model are these bits already
    result = run_encoder_pair(model, base, image_config, text_config, paths, config, out, own)
    write_json(metrics, result)
    typer.echo(f"{image}+{text}: full ndcg@10={result['full']['ndcg@10']:.4f} "
               f"cold ndcg@10={result['cold']['ndcg@10']:.4f}")


if __name__ == "__main__":
    app()
