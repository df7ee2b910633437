"""score-new (a command, not a DVC stage): items nobody has seen, placed by content — embedded with
the pipeline's own encoders and fitted settings, passed through the headline model's item tower with
no ID — and listed with the users each would be recommended to and its nearest catalogue items.

    pixrec score-new --items new.csv [--covers DIR] [--k 10] [--users 10] [--model NAME] [--json]

``new.csv`` has item_info.csv's columns; covers are ``DIR/<item_id>.jpg`` (or .png, .webp).
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from stages._params import fail_cleanly
from stages.similar import label

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


@app.command()
@fail_cleanly
def main(
    items: Path = typer.Option(..., help="new items in item_info.csv's columns"),
    covers: Path = typer.Option(None, help="a folder of <item_id>.jpg covers (none: images masked)"),
    k: int = typer.Option(None, help="list length: a user's top-k, nearest items (default: recommend.k "
                                     "of the last repro)"),
    users: int = typer.Option(10, help="users listed per item (all are counted)"),
    model: str = typer.Option(None, help="default: the headline model of the last repro"),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
    workspace: Path = typer.Option(Path("."), help="a pipeline checkout where dvc repro has run"),
) -> None:
    from pixrec.serve.api import at_least, load

    if k is not None:
        at_least("--k", k, 1)
    at_least("--users", users, 0)
    ws = load(workspace)
    placed = ws.score_new_items(items, covers, k=k, users=users, model=model)
    for line in placed.report:
        typer.echo(f"note: {line}", err=True)
    if as_json:
        typer.echo(json.dumps({"model": model or ws.headline, "items": [
            {**row, "users": placed.users.filter(item_id=row["item_id"]).drop("item_id").to_dicts(),
             "nearest": placed.nearest.filter(item_id=row["item_id"]).drop("item_id").to_dicts()}
            for row in placed.items.iter_rows(named=True)]}, indent=2, ensure_ascii=False))
        return
    for row in placed.items.iter_rows(named=True):
        mine = placed.users.filter(item_id=row["item_id"])
        typer.echo(f"{row['item_id']}: {label(row)} — in the top {k or ws.lists.k} of {row['n_users']:,} "
                   f"users by {model or ws.headline}" + (f"; first {mine.height}:" if mine.height else ""))
        for r in mine.iter_rows(named=True):
            typer.echo(f"      {r['user_id']:<10} rank {r['rank']:>3}  score {r['score']:.3f}")
        typer.echo("    nearest catalogue items:")
        for r in placed.nearest.filter(item_id=row["item_id"]).iter_rows(named=True):
            typer.echo(f"  {r['rank']:>3}. {r['neighbour_id']:<10} {r['cosine']:>6.3f}  {label(r)}")


if __name__ == "__main__":
    app()
