"""The whole DVC pipeline on the tiny dataset, in a real DVC repo: it runs, caches, and re-runs
only what a parameter change touches."""

from __future__ import annotations

import json

import pytest
from dvc_repo import make_dvc_repo, run_dvc, set_params

STAGES = ["download", "split", "embed-images", "embed-text", "negative-sample", "train", "evaluate",
          "ablate", "ablate-encoders", "ablate-summary", "report"]
TINY = {
    "data.preset": "tiny",
    "model": {"dim": 16, "heads": 2, "layers": 1, "mlp_hidden": 16},
    "train": {"epochs": 2, "patience": 2, "val_users": 50, "batch_size": 1024},
    "negatives": {"epochs": 2, "per_positive": 2},
    "ablate.variants": ["full", "no_image"],
    "eval.baselines": ["random", "most_popular", "item_knn", "content_knn"],
    "report": {"scan_users": 30, "n_example_users": 2},
}


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    repo = make_dvc_repo(tmp_path_factory.mktemp("pipeline"), STAGES, TINY)
    run_dvc(repo, "repro")
    return repo


def ran(output: str) -> set[str]:
    return {line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage")}


@pytest.mark.slow
def test_repro_writes_every_metric_and_the_report(repo):
    evaluate = json.loads((repo / "metrics" / "evaluate.json").read_text())
    assert {"random", "most_popular", "item_knn", "content_knn", "fusion"} <= set(evaluate)
    for protocol in ("sampled", "full", "cold"):
        assert 0.0 <= evaluate["fusion"][protocol]["ndcg@10"] <= 1.0
    ablation = json.loads((repo / "metrics" / "ablation.json").read_text())
    assert set(ablation) == {"full", "no_image"}
    assert ablation["no_image"]["modalities"] == ["user", "item", "tag", "counts", "text"]
    # the `full` cell retrains the main model with the same params: same metrics, bit for bit
    assert ablation["full"]["full"] == evaluate["fusion"]["full"]
    # ... and so does the encoder grid's cell for the pipeline's own encoders (embedding included)
    grid = json.loads((repo / "metrics" / "ablation_encoders.json").read_text())
    assert grid["pixel-sbert"]["full"] == evaluate["fusion"]["full"]
    assert grid["pixel-sbert"]["encoders"]["text"]["encoder"] == "sbert"
    train = json.loads((repo / "metrics" / "train.json").read_text())
    assert train["epochs_run"] >= 1
    assert (repo / "reports" / "index.html").stat().st_size > 10_000
    shown = run_dvc(repo, "metrics", "show", "--json").stdout
    assert "evaluate.json" in shown


@pytest.mark.slow
def test_second_repro_does_nothing_and_lr_change_skips_embeddings(repo):
    assert ran(run_dvc(repo, "repro").stdout) == set()
    set_params(repo, {"train.lr": 0.01})
    out = run_dvc(repo, "repro").stdout
    # train.* feeds the main model and every ablation cell; nothing upstream re-runs
    assert ran(out) == {"train", "evaluate", "ablate@full", "ablate@no_image",
                        "ablate-encoders@pixel-sbert", "ablate-summary", "report"}
    set_params(repo, {"ablate.drop.no_image": ["image", "counts"]})
    assert ran(run_dvc(repo, "repro").stdout) == {"ablate@no_image", "ablate-summary", "report"}
