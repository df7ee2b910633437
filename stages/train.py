"""train stage (``train-<model>``): fit one model of ``pixrec.models`` from its params section;
checkpoint, dvclive curves, ``metrics/train/<model>.json``.

``<model>.train.nproc > 1`` re-launches this same command under torchrun (one process per share of
the cores, or per GPU); inside torchrun it joins the process group and only rank 0 writes outputs.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import typer

from stages._params import declared, fail_cleanly, read_params

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)

PARAMS = ("{model}",)  # = this stage's params in dvc.yaml: the model's own section


def load_params(path: Path, model: str):
    """(the model's family, its typed section: ``model``, ``train`` and family-specific keys)."""
    from pixrec.models import family

    fam = family(model)
    with read_params(path, declared(PARAMS, model=model)) as p:
        return fam, p.section(fam.section, model)


@app.command()
@fail_cleanly
def main(
    model: str = typer.Option(..., help="a name from pixrec.models (fusion, two_tower)"),
    split: Path = typer.Option(Path("data/split")),
    embeddings: Path = typer.Option(Path("data/embeddings")),
    negatives: Path = typer.Option(Path("data/negatives"), help="read only by models that train on "
                                   "the negative-sample stage's negatives (fusion)"),
    tuning: Path = typer.Option(Path("metrics/tuning.json"), help="the tune stage's metrics: the best "
                                "baselines' validation NDCG@10, read by models whose cold lift is "
                                "chosen against them (two_tower)"),
    out: Path = typer.Option(None, help="default: models/<model>"),
    metrics: Path = typer.Option(None, help="default: metrics/train/<model>.json"),
    live_dir: Path = typer.Option(None, help="default: dvclive/<model>"),
    params: Path = typer.Option(Path("params.yaml")),
) -> None:
    from pixrec import distributed

    out = out or Path("models") / model
    metrics = metrics or Path("metrics/train") / f"{model}.json"
    live_dir = live_dir or Path("dvclive") / model
    fam, section = load_params(params, model)
    if section.train.nproc > 1 and not distributed.launched_by_torchrun():
        args = {"--model": model, "--split": split, "--embeddings": embeddings, "--tuning": tuning,
                "--negatives": negatives, "--out": out, "--metrics": metrics, "--live-dir": live_dir,
                "--params": params}
        rc = _torchrun(section.train.nproc, section.train.threads,
                       [str(x) for kv in args.items() for x in kv])
        if rc:
            raise SystemExit(rc)
        return
    _train(fam, section, split, embeddings, negatives, tuning, out, metrics, live_dir)


def _train(fam, section, split: Path, embeddings: Path, negatives: Path, tuning: Path, out: Path,
           metrics: Path, live_dir: Path) -> None:
    from dvclive import Live

    from pixrec import distributed
    from pixrec.atomic import atomic_dir, write_json
    from pixrec.data.dataset import SplitData
    from pixrec.features import load_embeddings
    from pixrec.models.cold_lift import Yardstick
    from pixrec.negatives import load_training_negatives
    from pixrec.training import train

    data = SplitData.load(split)
    emb = load_embeddings(embeddings, data.n_items)
    negs = load_training_negatives(negatives) if fam.reads_negatives else None
    yardstick = Yardstick.from_tuning(tuning) if fam.reads_tuning else None
    with distributed.process_group() as place:
        task = fam.task(data, emb, negs, section, distributed.device(place.local_rank), yardstick)
        if not place.is_main:  # rank 0 alone writes the checkpoint, curves and metrics
            train(task, section.train, None)
            return
        with Live(str(live_dir), dvcyaml=None, save_dvc_exp=False, report=None) as live, \
                atomic_dir(out) as tmp:
            result = train(task, section.train, tmp, live=live)
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
