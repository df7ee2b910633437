"""ablate stage (one DVC matrix cell): the fusion model without some tokens, trained and evaluated
exactly like the main model."""

from __future__ import annotations

from pathlib import Path

import typer

from pixrec.config import from_mapping
from stages._params import fail_cleanly, load_sections

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)

# the eval keys an ablation cell reads (dvc.yaml lists the same): protocol and two-stage settings
EVAL_KEYS = ("eval.ks", "eval.batch_users", "eval.seed", "eval.ranking", "eval.two_stage_retrievers",
             "eval.two_stage_candidates", "eval.knn_neighbours")


def eval_config(p: dict):
    """An EvalConfig from the ``eval.*`` keys of :data:`EVAL_KEYS` (no baselines: the cell is one model)."""
    from pixrec.evaluation.evaluator import EvalConfig

    return from_mapping(EvalConfig, {k.split(".", 1)[1]: p[k] for k in EVAL_KEYS} | {"baselines": []},
                        "eval")


@app.command()
@fail_cleanly
def main(
    variant: str = typer.Option(..., help="a name from ablate.variants"),
    split: Path = typer.Option(Path("data/split")),
    embeddings: Path = typer.Option(Path("data/embeddings")),
    negatives: Path = typer.Option(Path("data/negatives")),
    model: Path = typer.Option(Path("models/fusion"), help="the main model: reused by a variant that "
                               "drops nothing (same params, same weights) instead of retraining"),
    out: Path = typer.Option(Path("data/ablation/full")),
    metrics: Path = typer.Option(Path("metrics/ablation/full.json")),
    params: Path = typer.Option(Path("params.yaml")),
) -> None:
    from pixrec.ablation import run_variant
    from pixrec.io import write_json
    from pixrec.model import ModelConfig
    from pixrec.training import TrainConfig

    drop_key = f"ablate.drop.{variant}"  # only this cell's entry: editing another re-runs nothing here
    p = load_sections(params, "model", "train", drop_key, *EVAL_KEYS)
    result = run_variant(
        variant,
        list(p[drop_key] or []),
        split,
        embeddings,
        negatives,
        from_mapping(ModelConfig, p["model"], "model"),
        from_mapping(TrainConfig, p["train"], "train"),
        eval_config(p),
        out,
        main_model=model,
    )
    write_json(metrics, result)
    typer.echo(f"{variant}: full ndcg@10={result['full']['ndcg@10']:.4f} "
               f"cold ndcg@10={result['cold']['ndcg@10']:.4f}")


if __name__ == "__main__":
    app()
