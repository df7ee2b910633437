"""similar (a command, not a DVC stage): the nearest catalogue items to given items by cosine of the
headline model's item vectors (exact, as the recommend stage stored them: no torch); a cold item's
vector comes from its content, and the output says so.

    pixrec similar --item i8056 [--item i64] [--k 10] [--model NAME] [--json]
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from stages._params import fail_cleanly

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


@app.command()
@fail_cleanly
def main(
    item: list[str] = typer.Option(..., help="an item_id (repeatable)"),
    k: int = typer.Option(10, help="neighbours per item"),
    model: str = typer.Option(None, help="default: the headline model of the last repro"),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
    workspace: Path = typer.Option(Path("."), help="a pipeline checkout where dvc repro has run"),
) -> None:
    import polars as pl

    from pixrec.serve.api import at_least, load

    at_least("--k", k, 1)
    ws = load(workspace)
    found = ws.similar(item, k, model)
    ids = list(dict.fromkeys(item))
    about = ws.describe(pl.DataFrame({"item_id": ids}, schema={"item_id": pl.Utf8}))
    about = about.with_columns(cold=pl.Series(ws.cold(ids), dtype=pl.Boolean))
    if as_json:
        typer.echo(json.dumps({"model": model or ws.headline, "items": [
            {**row, "similar": found.filter(item_id=row["item_id"]).drop("item_id").to_dicts()}
            for row in about.iter_rows(named=True)]}, indent=2, ensure_ascii=False))
        return
    for row in about.iter_rows(named=True):
        typer.echo(f"{row['item_id']}: {label(row)} — nearest by {model or ws.headline}")
        if row["cold"]:
            typer.echo(f"    {row['item_id']} is cold (no training interaction): its vector comes from its "
                       "content")
        for r in found.filter(item_id=row["item_id"]).iter_rows(named=True):
            typer.echo(f"  {r['rank']:>3}. {r['neighbour_id']:<10} {r['cosine']:>6.3f}  {label(r)}")


def label(row: dict) -> str:
    """``title [tag]`` of an item row, saying so where either is empty."""
    return f"{row['title'] or '(no title)'} [{row['tag'] or 'no tag'}]"


if __name__ == "__main__":
    app()
