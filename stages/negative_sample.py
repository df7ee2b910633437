"""negative-sample stage: per-epoch training negatives (data/negatives) and the fixed 1+20 candidate
sets of the sampled protocol (data/candidates), two outputs so that training depends only on the
first and evaluation only on the second."""

from __future__ import annotations

from pathlib import Path

import typer

from pixrec.negatives import NegativesConfig
from stages._params import fail_cleanly, read_params

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)

PARAMS = ("negatives",)  # = this stage's params in dvc.yaml


def load_params(path: Path) -> NegativesConfig:
    with read_params(path, PARAMS) as p:
        return p.section(NegativesConfig, "negatives")


@app.command()
@fail_cleanly
def main(
    split: Path = typer.Option(Path("data/split")),
    out: Path = typer.Option(Path("data/negatives"), help="training negatives"),
    candidates: Path = typer.Option(Path("data/candidates"), help="sampled-protocol candidate sets"),
    params: Path = typer.Option(Path("params.yaml")),
) -> None:
    from pixrec.data.dataset import SplitData
    from pixrec.negatives import write_negatives

    meta = write_negatives(SplitData.load(split), load_params(params), out, candidates)
    typer.echo(f"train negatives {meta['negatives']['train_negatives_shape']}, sampled protocol: "
               f"{meta['candidates']['n_sampled_users']} users x {meta['candidates']['n_candidates']}")


if __name__ == "__main__":
    app()
