"""train stage: fit the six-token fusion model; checkpoint, dvclive curves, metrics/train.json.

``train.nproc > 1`` re-launches this same command under torchrun (one process per share of the
cores, or per GPU); inside torchrun it joins the process group and only rank 0 writes outputs.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import typer

from stages._params import fail_cleanly, read_params

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)

PARAMS = ("model", "train")  # = this stage's params in dvc.yaml


def load_params(path: Path):
    """(ModelConfig, TrainConfig)."""
    from pixrec.model import ModelConfig
    from pixrec.training import TrainConfig

    with read_params(path, PARAMS) as p:
        return p.section(ModelConfig, "model"), p.section(TrainConfig, "train")


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
    from dvclive import Live

    from pixrec import distributed as D
    from pixrec.data.dataset import SplitData
    from pixrec.features import load_embeddings
    from pixrec.io import atomic_dir, write_json
    from pixrec.negatives import load_training_negatives
    from pixrec.training import train

    model_config, config = load_params(params)
    if config.nproc > 1 and not D.launched_by_torchrun():
        args = {"--split": split, "--embeddings": embeddings, "--negatives": negatives, "--out": out,
                "--metrics": metrics, "--live-dir": live_dir, "--params": params}
        rc = _torchrun(config.nproc, config.threads, [str(x) for kv in args.items() for x in kv])
        if rc:
            raise SystemExit(rc)
        return
    data = SplitData.load(split)
    emb = load_embeddings(embeddings, data.n_items)
    negs = load_training_negatives(negatives)
    with D.process_group() as place:
        if not place.is_main:  # rank 0 alone writes the checkpoint, curves and metrics
            train(data, emb, negs, model_config, config, None)
            return
        with Live(str(live_dir), dvcyaml=None, save_dvc_exp=False, report=None) as live, \
                atomic_dir(out) as tmp:
            result = train(data, emb, negs, model_config, config, tmp, live=live)
    write_json(metrics, result)
    typer.echo(" ".join(f"{k}={v}" for k, v in result.items()))


def _torchrun(nproc: int, threads: int, args: list[str]) -> int:
    """Run this stage in ``nproc`` local processes under torchrun; its exit code.

    The stage log (PIXREC_STAGE_LOG) is left to this parent: one record per stage, whose peak child
    RSS covers the largest rank. Each rank's OpenMP pool gets its share of ``threads``, as torch's.
    """
    env = {k: v for k, v in os.environ.items() if k != "PIXREC_STAGE_LOG"}
    env.setdefault("OMP_NUM_THREADS", str(max(1, threads // nproc)))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(nproc),
           "-m", "stages.train", *args]
    return subprocess.run(cmd, env=env, check=False).returncode


if __name__ == "__main__":
    app()
