"""ablate stage (one DVC matrix cell): the headline model with one variant applied (a token removed or
added, another loss, no ID dropout, mean fusion, no freshness bias), trained and evaluated exactly
like the model itself."""

from __future__ import annotations

from pathlib import Path

import typer

from stages._params import StageParams, declared, fail_cleanly, read_params

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)

# the eval keys a cell reads: the protocols, and two-stage ranking when the model scores pairs
EVAL_KEYS = ("eval.ks", "eval.batch_users", "eval.seed", "eval.ranking", "eval.two_stage_retrievers",
             "eval.two_stage_candidates")
# a cell is one model: the exact vs two-stage sweep is the two-stage stage's
EVAL_FIXED = {"two_stage_sweep": []}
# = dvc.yaml: {model} = ${models.headline}, {variant} = ${item.variant}
PARAMS = ("{model}", *EVAL_KEYS, "ablate.cells.{variant}")


def eval_config(p: StageParams):
    """The cell's EvalConfig from :data:`EVAL_KEYS` (shared with the ablate-encoders stage)."""
    from pixrec.evaluation.config import EvalConfig

    return p.section(EvalConfig, "eval", **EVAL_FIXED)


def load_params(path: Path, model: str, variant: str):
    """(the model's section, the variant's overrides, the section they make, EvalConfig) of cell
    ``variant``; an override naming no key of the section is an error here, before any work."""
    from typing import Any

    from pixrec.ablation import variant_section
    from pixrec.config import ConfigError
    from pixrec.models import family

    with read_params(path, declared(PARAMS, model=model, variant=variant), headline=model) as p:
        fam = family(model)
        base, spec = p.section(fam.section, model), p.value(f"ablate.cells.{variant}", dict[str, Any])
        try:
            changed = variant_section(fam, base, variant, spec, model)
        except ConfigError as exc:
            raise ConfigError(f"{p.path}: {exc}") from None
        return base, spec, changed, eval_config(p)


@app.command()
@fail_cleanly
def main(
    model: str = typer.Option(..., help="the headline model (models.headline)"),
    variant: str = typer.Option(..., help="a name from ablate.variants"),
    split: Path = typer.Option(Path("data/split")),
    embeddings: Path = typer.Option(Path("data/embeddings")),
    negatives: Path = typer.Option(Path("data/negatives")),
    candidates: Path = typer.Option(Path("data/candidates"), help="sampled-protocol candidate sets"),
    tuning: Path = typer.Option(Path("metrics/tuning.json"), help="the tune stage's metrics: the yardstick "
                                "a retrained two-tower's cold lift is chosen against"),
    models: Path = typer.Option(Path("models"), help="models/<model> is reused by a variant that changes "
                                "nothing"),
    out: Path = typer.Option(Path("data/ablation/full")),
    metrics: Path = typer.Option(Path("metrics/ablation/full.json")),
    params: Path = typer.Option(Path("params.yaml")),
) -> None:
    from pixrec.ablation import run_variant
    from pixrec.atomic import write_json

    base, spec, changed, config = load_params(params, model, variant)
    paths = {"split": split, "embeddings": embeddings, "negatives": negatives, "candidates": candidates,
             "tuning": tuning, "model": models / model}
    result = run_variant(variant, spec, model, base, changed, paths, config, out)
    write_json(metrics, result)
    typer.echo(f"{variant}: full ndcg@10={result['full']['ndcg@10']:.4f} "
               f"cold ndcg@10={result['cold']['ndcg@10']:.4f}")


if __name__ == "__main__":
    app()
