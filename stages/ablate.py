"""ablate stage (one DVC matrix cell): the fusion model without some tokens, trained and evaluated
exactly like the main model."""

from __future__ import annotations

from pathlib import Path

import typer

from stages._params import StageParams, declared, fail_cleanly, read_params

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)

# the eval keys an ablation cell reads: the protocols and the two-stage ranking of one model (the
# retrievers with their fixed knobs); not eval.intervals (the evaluate stage's alone)
EVAL_KEYS = ("eval.ks", "eval.batch_users", "eval.seed", "eval.ranking", "eval.two_stage_retrievers",
             "eval.two_stage_candidates")
# a cell is one model: the exact vs two-stage sweep is the two-stage stage's
EVAL_FIXED = {"two_stage_sweep": []}
PARAMS = ("model", "train", *EVAL_KEYS, "ablate.drop.{variant}")  # = dvc.yaml, {variant} = ${item.variant}


def eval_config(p: StageParams):
    """The cell's EvalConfig from :data:`EVAL_KEYS` (shared with the ablate-encoders stage)."""
    from pixrec.evaluation import EvalConfig

    return p.section(EvalConfig, "eval", **EVAL_FIXED)


def load_params(path: Path, variant: str):
    """(tokens to drop, ModelConfig, TrainConfig, EvalConfig) of cell ``variant``."""
    from pixrec.model import ModelConfig
    from pixrec.training import TrainConfig

    with read_params(path, declared(PARAMS, variant=variant)) as p:
        return (p.value(f"ablate.drop.{variant}", list[str]), p.section(ModelConfig, "model"),
                p.section(TrainConfig, "train"), eval_config(p))


@app.command()
@fail_cleanly
def main(
    variant: str = typer.Option(..., help="a name from ablate.variants"),
    split: Path = typer.Option(Path("data/split")),
    embeddings: Path = typer.Option(Path("data/embeddings")),
    negatives: Path = typer.Option(Path("data/negatives")),
    candidates: Path = typer.Option(Path("data/candidates"), help="sampled-protocol candidate sets"),
    model: Path = typer.Option(Path("models/fusion"), help="the main model: reused by a variant that "
                               "drops nothing (same params, same weights) instead of retraining"),
    out: Path = typer.Option(Path("data/ablation/full")),
    metrics: Path = typer.Option(Path("metrics/ablation/full.json")),
    params: Path = typer.Option(Path("params.yaml")),
) -> None:
    from pixrec.ablation import run_variant
    from pixrec.io import write_json

    # only this cell's ablate.drop entry: editing another cell's re-runs nothing here
    drop, model_config, train_config, eval_config_ = load_params(params, variant)
    result = run_variant(variant, drop, split, embeddings, negatives, candidates, model_config,
                         train_config, eval_config_, out, main_model=model)
    write_json(metrics, result)
    typer.echo(f"{variant}: full ndcg@10={result['full']['ndcg@10']:.4f} "
               f"cold ndcg@10={result['cold']['ndcg@10']:.4f}")


if __name__ == "__main__":
    app()
