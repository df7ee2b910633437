"""train stage: fit the six-token fusion model; checkpoint, dvclive curves, metrics/train.json."""

from __future__ import annotations

from pathlib import Path

import typer

from pixrec.config import from_mapping
from stages._params import fail_cleanly, load_sections

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


@app.command()
@fail_cleanly
def main(
    split: Path = typer.Option(Path("data/split")),
    embeddings: Path = typer.Option(Path("data/embeddings")),
    negatives: Path = typer.Option(Path("data/negatives")),
    out: Path = typer.Option(Path("models/fusion")),
    metrics: Path = typer.Option(Path("metrics/train.json")),
    live_dir: Path = typer.Option(Path("dvclive/train")),
    params: Path = typer.Option(Path("params.yaml")),
) -> None:
    import numpy as np
    from dvclive import Live

    from pixrec import schema as S
    from pixrec.data.dataset import SplitData
    from pixrec.features import load_embeddings
    from pixrec.io import atomic_dir, write_json
    from pixrec.model import ModelConfig
    from pixrec.training import TrainConfig, train

    p = load_sections(params, "model", "train")
    model_config = from_mapping(ModelConfig, p["model"], "model")
    config = from_mapping(TrainConfig, p["train"], "train")
    data = SplitData.load(split)
    emb = load_embeddings(embeddings, data.n_items)
    negs = np.load(negatives / S.TRAIN_NEG_FILE, mmap_mode="r")
    with Live(str(live_dir), dvcyaml=None, save_dvc_exp=False, report=None) as live, \
            atomic_dir(out) as tmp:
        result = train(data, emb, negs, model_config, config, tmp, live=live)
    write_json(metrics, result)
    typer.echo(" ".join(f"{k}={v}" for k, v in result.items()))


if __name__ == "__main__":
    app()
