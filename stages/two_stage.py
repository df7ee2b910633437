"""two-stage stage: exact vs two-stage full ranking of each pairwise model of ``models.fit`` (a family
whose exact ranking scores every (user, item) pair: the six-token ``fusion``) for each N in
eval.two_stage_sweep -> metrics/two_stage.json, ``{model: sweep}`` (the report's two-stage tables;
docs/evaluation.md); ``{}`` when ``models.fit`` has no pairwise model. The exact row is the evaluate
stage's result for the same model when it ranked exactly (else it is ranked here)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from stages._params import fail_cleanly, read_params

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)

# what the sweep reads: the full/cold protocols, the retrievers with their fixed knobs, N
PARAMS = ("models.fit", "eval.ks", "eval.batch_users", "eval.seed", "eval.two_stage_retrievers",
          "eval.two_stage_sweep")  # = dvc.yaml
# one model ranked exactly and then two-stage with each N of the sweep (which sets the candidates)
EVAL_FIXED = {"ranking": "exact", "two_stage_candidates": 1}


def load_params(path: Path):
    """(EvalConfig, the names in ``models.fit``)."""
    from pixrec.evaluation.config import EvalConfig

    with read_params(path, PARAMS) as p:
        return p.section(EvalConfig, "eval", **EVAL_FIXED), p.value("models.fit", list[str])


@app.command()
@fail_cleanly
def main(
    split: Path = typer.Option(Path("data/split")),
    embeddings: Path = typer.Option(Path("data/embeddings")),
    models: Path = typer.Option(Path("models"), help="holds models/<name> for each of models.fit"),
    evaluate: Path = typer.Option(Path("metrics/evaluate.json"), help="the evaluate stage's metrics"),
    eval_meta: Path = typer.Option(Path("data/eval/meta.json"), help="the evaluate stage's config"),
    metrics: Path = typer.Option(Path("metrics/two_stage.json")),
    params: Path = typer.Option(Path("params.yaml")),
) -> None:
    from pixrec.atomic import write_json
    from pixrec.data.dataset import SplitData
    from pixrec.evaluation.two_stage import evaluated_exactly, two_stage_sweep
    from pixrec.features import load_embeddings
    from pixrec.models import family

    config, fit = load_params(params)
    pairwise = [name for name in fit if family(name).pairwise]
    result = {}
    if not pairwise:
        typer.echo(f"models.fit {fit} has no pairwise model: no exact vs two-stage comparison")
    else:
        data = SplitData.load(split)
        emb = load_embeddings(embeddings, data.n_items)
        ran = evaluate.is_file() and eval_meta.is_file()
        for name in pairwise:
            ranker = family(name).load(models / name, data, embeddings, name=name)
            exact = evaluated_exactly(json.loads(evaluate.read_text()), json.loads(eval_meta.read_text()),
                                      name, config) if ran else None
            result[name] = two_stage_sweep(ranker, data, emb, config, log=typer.echo, exact=exact)
    write_json(metrics, result)
    typer.echo(f"-> {metrics}")


if __name__ == "__main__":
    app()
