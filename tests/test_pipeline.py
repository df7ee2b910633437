"""The whole DVC pipeline on the tiny dataset, in a real DVC repo: it runs, caches, and re-runs
only what a parameter change touches."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import yaml
from dvc_repo import TINY_REPRO, make_dvc_repo, run_dvc, set_params

from pixrec.evaluation.intervals import point_estimates

STAGES = ["headline", "download", "split", "embed-images", "embed-text", "negative-sample", "train",
          "tune", "evaluate", "recommend", "two-stage", "ablate", "ablate-encoders",
          "ablate-summary", "report"]
TINY = {
    **TINY_REPRO,
    "ablate.variants": ["full", "no_image"],
    "eval.two_stage_sweep": [5, 40],
    "report": {"n_example_users": 2},
}


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    repo = make_dvc_repo(tmp_path_factory.mktemp("pipeline"), STAGES, TINY)
    run_dvc(repo, "repro", env={"PIXREC_STAGE_LOG": str(repo.parent / "stages.jsonl")})
    return repo


def ran(output: str) -> set[str]:
    return {line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage")}


@pytest.mark.slow
def test_repro_writes_every_metric_and_the_report(repo):
    evaluate = json.loads((repo / "metrics" / "evaluate.json").read_text())
    assert evaluate.pop("intervals")["reference"] in TINY["baselines.names"]  # the paired tests' baseline
    assert {"random", "most_popular", "item_knn", "ease", "content_knn", "fusion", "two_tower",
            "two_tower+rerank"} <= set(evaluate)
    full = {m: evaluate[m]["full"]["ndcg@10"] for m in evaluate}
    # what the data's latent structure lets a method learn (measured on this tiny data: random 0.022,
    # most_popular 0.055, fusion 0.055 after 2 epochs, item_knn 0.17, ease 0.16; bit-for-bit stable)
    assert full["ease"] > 2 * full["most_popular"] and full["item_knn"] > 2 * full["most_popular"]
    assert full["most_popular"] > 2 * full["random"] and full["fusion"] > 2 * full["random"]
    # 0.091 vs 0.055 after 12 epochs at dim 16: the cold lift, chosen to lead on both protocols, spends
    # full-ranking accuracy on this tiny data to find cold items (checked below)
    assert full["two_tower"] > 1.1 * full["most_popular"]
    assert evaluate["two_tower"]["cold"]["ndcg@10"] > 0
    # cold test items exist, ID-only methods cannot rank them, content can
    cold = {m: evaluate[m]["cold"] for m in evaluate}
    assert all(c["n_users"] == cold["fusion"]["n_users"] > 0 for c in cold.values())
    assert cold["ease"]["ndcg@10"] == cold["most_popular"]["ndcg@10"] == 0.0
    assert cold["content_knn"]["ndcg@10"] > 0.1
    ranks = pl.read_parquet(repo / "data" / "eval" / "ranks.parquet")
    n_cold = ranks.filter((pl.col("model") == "fusion") & (pl.col("protocol") == "cold")).height
    assert n_cold == cold["fusion"]["n_users"]
    ablation = json.loads((repo / "metrics" / "ablation.json").read_text())
    assert set(ablation) == {"full", "no_image", "rerank"}  # rerank: the evaluate stage's row
    assert ablation["no_image"]["variant"] == {"model.tokens": ["item", "tag", "text"]}
    assert ablation["no_image"]["model"] == "two_tower"
    # the `full` cell is the main model (same params): reused, not retrained, same metrics
    assert ablation["full"]["full"] == point_estimates(evaluate["two_tower"]["full"])
    assert ablation["full"]["train"]["reused"] and "reused" not in ablation["no_image"]["train"]
    # ... and so is the encoder grid's cell for the pipeline's own encoders (embeddings copied)
    grid = json.loads((repo / "metrics" / "ablation_encoders.json").read_text())
    assert grid["pixel-sbert"]["full"] == point_estimates(evaluate["two_tower"]["full"])
    assert (repo / "data/ablation_encoders/pixel-sbert/embeddings/text/embeddings.npy").read_bytes() == (
        repo / "data/embeddings/text/embeddings.npy").read_bytes()
    assert grid["pixel-sbert"]["encoders"]["text"]["encoder"] == "sbert"
    for model in ("fusion", "two_tower"):
        assert json.loads((repo / "metrics" / "train" / f"{model}.json").read_text())["epochs_run"] >= 1
    assert (repo / "reports" / "index.html").stat().st_size > 10_000
    # DVC metrics are the compact headline: `dvc metrics show` stays narrow; the detail is an output
    shown = json.loads(run_dvc(repo, "metrics", "show", "--json").stdout)
    assert {Path(p).name for rev in shown.values() for p in rev["data"]} == {"headline.json"}


@pytest.mark.slow
def test_second_repro_does_nothing_and_lr_change_skips_embeddings(repo):
    assert ran(run_dvc(repo, "repro").stdout) == set()
    set_params(repo, {"two_tower.train.lr": 0.005})
    out = run_dvc(repo, "repro").stdout
    # two_tower.* feeds the headline model (its evaluation, headline table and recommendations) and
    # every ablation cell; nothing upstream re-runs, nor the pair model. The two-stage table reads the
    # pair model's exact ranking from evaluate.json, so it re-runs (its sweep only: a few seconds)
    assert ran(out) == {"train@two_tower", "evaluate", "headline", "recommend", "two-stage", "ablate@full",
                        "ablate@no_image", "ablate-encoders@pixel-sbert", "ablate-summary", "report"}
    set_params(repo, {"fusion.train.lr": 0.01})
    assert ran(run_dvc(repo, "repro").stdout) == {"train@fusion", "evaluate", "headline", "recommend",
                                                  "two-stage", "ablate-summary", "report"}
    set_params(repo, {"ablate.cells.no_image": {"model.tokens": ["item", "text"]}})
    assert ran(run_dvc(repo, "repro").stdout) == {"ablate@no_image", "ablate-summary", "report"}


def _lock_hash(repo, stage: str, out: str) -> str:
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    return next(o["md5"] for o in lock["stages"][stage]["outs"] if o["path"] == out)


@pytest.mark.slow
def test_sampled_candidates_change_retrains_nothing(repo):
    """negatives.eval_candidates shapes the sampled protocol's candidate sets only: the training
    negatives keep their bytes, so the main model is not retrained. Ablation cells re-run: each
    evaluates its own model on the sampled protocol too."""
    negatives = _lock_hash(repo, "negative-sample", "data/negatives")
    candidates = _lock_hash(repo, "negative-sample", "data/candidates")
    set_params(repo, {"negatives.eval_candidates": 10})
    status = run_dvc(repo, "status", "--json").stdout
    assert "negative-sample" in json.loads(status) and "train@fusion" not in json.loads(status)
    out = run_dvc(repo, "repro").stdout
    assert not {"train@fusion", "train@two_tower"} & ran(out)
    assert {"negative-sample", "evaluate", "report"} <= ran(out)
    assert _lock_hash(repo, "negative-sample", "data/negatives") == negatives
    assert _lock_hash(repo, "negative-sample", "data/candidates") != candidates
    assert np.load(repo / "data" / "candidates" / "sampled_candidates.npy").shape[1] == 1 + 10


@pytest.mark.slow
def test_forced_rerun_writes_the_same_bytes(repo):
    """Same params, same outputs bit for bit: no timings or machine paths in what a stage writes, so
    dvc.lock (the hash of every output) does not move when stages run again."""
    before = (repo / "dvc.lock").read_text()
    run_dvc(repo, "repro", "--force", "--single-item", "embed-text", "train@fusion", "train@two_tower",
            "tune", "evaluate", "two-stage")
    assert (repo / "dvc.lock").read_text() == before


@pytest.mark.slow
def test_two_stage_table_brackets_exact_ranking(repo):
    """The exact row is the evaluate stage's fusion result; more candidates never lose the target."""
    table = json.loads((repo / "metrics" / "two_stage.json").read_text())["fusion"]
    evaluate = json.loads((repo / "metrics" / "evaluate.json").read_text())
    assert table["exact"]["full"] == point_estimates(evaluate["fusion"]["full"])
    small, big = table["n=5"]["full"], table["n=40"]["full"]
    assert 0 < small["candidate_recall"] <= big["candidate_recall"] <= 1
    assert small["mean_candidates"] < big["mean_candidates"] <= 80
    # a target outside the candidates ranks last: two-stage recall@k can't beat candidate recall
    assert big["recall@50"] <= big["candidate_recall"] + 1e-12


@pytest.mark.slow
def test_bench_reports_every_stage_and_the_compute_figures(repo, tmp_path):
    import subprocess
    import sys

    from dvc_repo import dvc_env

    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, "-m", "stages.bench", "--workspace", str(repo), "--out", str(out),
         "--stage-log", str(repo.parent / "stages.jsonl"), "--n-images", "16", "--n-texts", "16",
         "--train-steps", "2", "--fusion-users", "2"],
        cwd=repo, env=dvc_env(), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    bench = json.loads(out.read_text())
    names = [r["stage"] for r in bench["stages"]["rows"]]
    assert {"download", "split", "train@fusion", "train@two_tower", "two-stage", "ablate@no_image",
            "ablate-encoders@pixel-sbert", "report"} <= set(names)
    assert all(r["ok"] and r["wall_s"] >= 0 and r["peak_rss_mib"] > 0 for r in bench["stages"]["rows"])
    # a stage that loads torch and trains holds far more than a bare interpreter (~10 MiB);
    # tiny stages like ablate-summary may hold little more than that (32 MiB seen)
    train = next(r for r in bench["stages"]["rows"] if r["stage"] == "train@two_tower")
    assert train["wall_s"] > 0 and train["peak_rss_mib"] > 100
    assert bench["machine"]["cpus"] >= 1 and bench["machine"]["memory_gib"] > 0
    assert {r["side"] for r in bench["embed"]} == {"image", "text"}
    assert all(r["bare_per_s"] > 0 and r["stage_per_s"] > 0 for r in bench["embed"])
    assert bench["train"]["fusion"]["samples_per_s"] > 0 and bench["train"]["two_tower"]["samples_per_s"] > 0
    assert bench["ranking"]["users_per_s"] > 0
    assert bench["recommend"]["users"] == bench["dataset"]["users"] and bench["recommend"]["users_per_s"] > 0
    fusion = bench["fusion"]
    assert fusion["pairs"] == 2 * bench["dataset"]["items"] and fusion["mflop_per_pair"] > 0


@pytest.mark.slow
def test_models_fit_chooses_what_trains_evaluates_and_recommends(repo):
    """``models.fit`` is the train matrix: with only the flagship listed, the pair model is neither
    trained nor evaluated, and the stages that read the pair model (two-stage, the re-rank row) say
    so instead of failing. Last in this module: it shrinks the shared repo's pipeline."""
    set_params(repo, {"models.fit": ["two_tower"]})
    out = run_dvc(repo, "repro").stdout
    assert not {"train@fusion", "train@two_tower"} & ran(out)  # the flagship's cell is unchanged
    assert {"evaluate", "headline", "two-stage", "report"} <= ran(out)
    evaluate = json.loads((repo / "metrics" / "evaluate.json").read_text())
    assert "two_tower" in evaluate and not {"fusion", "two_tower+rerank"} & set(evaluate)
    assert json.loads((repo / "metrics" / "two_stage.json").read_text()) == {}
