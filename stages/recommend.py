"""recommend stage: every user's top-k unseen items by the headline model and each of
``recommend.models`` -> data/recommendations/<model>.parquet (user_id, rank, item_id, score).

    pixrec recommend                                   # the stage (dvc repro recommend runs this)
    pixrec recommend --user u92 [--k 10] [--model NAME] [--json]
                                                       # one user's recent history and top-k, titles
                                                       # and tags, from the stage's lists (no scoring)
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from stages._params import fail_cleanly, read_params

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)

PARAMS = ("recommend", "models.headline")  # = this stage's params in dvc.yaml


def load_params(path: Path):
    """(RecommendConfig, the headline model's name)."""
    from pixrec.serve.stage import RecommendConfig

    with read_params(path, PARAMS) as p:
        return p.section(RecommendConfig, "recommend"), p.value("models.headline", str)


@app.command()
@fail_cleanly
def main(
    user: list[str] = typer.Option(None, help="show these users' history and top-k (repeatable) "
                                   "instead of running the stage"),
    k: int = typer.Option(None, help="--user: items shown (default: recommend.k of the last repro)"),
    model: str = typer.Option(None, help="--user: the model (default: the headline model)"),
    as_json: bool = typer.Option(False, "--json", help="--user: print JSON"),
    history: int = typer.Option(5, help="--user: recent train + valid items shown"),
    split: Path = typer.Option(Path("data/split")),
    embeddings: Path = typer.Option(Path("data/embeddings"), help="holds image/ and text/"),
    tuning: Path = typer.Option(Path("data/tuning"), help="the baselines' chosen knobs (tune stage)"),
    models: Path = typer.Option(Path("models"), help="trained models, one directory each"),
    out: Path = typer.Option(Path("data/recommendations")),
    params: Path = typer.Option(Path("params.yaml"), help="read by the stage only"),
) -> None:
    if user:
        from pixrec.serve.api import Paths, Pixrec, at_least

        if k is not None:
            at_least("--k", k, 1)
        at_least("--history", history, 0)
        show_users(Pixrec(Paths(split, embeddings, models, out)), user, k, model, history, as_json)
        return
    from pixrec.data.dataset import SplitData
    from pixrec.serve.recommendations import write_recommendations
    from pixrec.serve.stage import recommend_all

    config, headline = load_params(params)
    data = SplitData.load(split)
    frames, manifest, vectors = recommend_all(data, headline, config, models, embeddings, tuning,
                                              log=typer.echo)
    write_recommendations(out, frames, manifest, vectors)
    typer.echo(f"wrote {out}/ ({', '.join(frames)}: top-{config.k} for {data.n_users:,} users)")


def show_users(ws, users: list[str], k: int | None, model: str | None, n_history: int, as_json: bool) -> None:
    """Print each user's last ``n_history`` seen items and top-``k`` list, as text or JSON."""
    recs, seen = ws.recommend(users, k, model), ws.history(users, n_history)
    name = model or ws.headline
    if as_json:
        typer.echo(json.dumps({"model": name, "users": [
            {"user_id": u, "history": seen.filter(user_id=u).drop("user_id").to_dicts(),
             "recommendations": recs.filter(user_id=u).drop("user_id").to_dicts()} for u in users]},
            indent=2, ensure_ascii=False))
        return
    for u in users:
        typer.echo(f"{u}: last {n_history} seen (train + valid), oldest first")
        for r in seen.filter(user_id=u).iter_rows(named=True):
            typer.echo(f"      {r['item_id']:<10} {_label(r)}")
        typer.echo(f"{u}: top {k or ws.lists.k} unseen by {name}")
        for r in recs.filter(user_id=u).iter_rows(named=True):
            typer.echo(f"  {r['rank']:>3}. {r['item_id']:<10} {r['score']:>8.3f}  {_label(r)}")


def _label(row: dict) -> str:
    return f"{row['title'] or '(no title)'} [{row['tag'] or 'no tag'}]"


if __name__ == "__main__":
    app()
