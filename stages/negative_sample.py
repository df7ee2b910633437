"""negative-sample stage: per-epoch training negatives + the fixed 1+20 sampled-protocol candidates."""

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
    out: Path = typer.Option(Path("data/negatives")),
    params: Path = typer.Option(Path("params.yaml")),
) -> None:
    from pixrec.data.dataset import SplitData
    from pixrec.negatives import NegativesConfig, write_negatives

    config = from_mapping(NegativesConfig, load_sections(params, "negatives")["negatives"],
                          "negatives")
    meta = write_negatives(SplitData.load(split), config, out)
    typer.echo(f"train negatives {meta['train_negatives_shape']}, "
               f"sampled protocol: {meta['n_sampled_users']} users x {meta['n_candidates']}")


if __name__ == "__main__":
    app()
