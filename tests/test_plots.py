"""`dvc plots show` on the project's own plot definitions (dvc.yaml, .dvc/plots, .dvc/config), in a real
git + DVC repo whose plot files come from the real writers: the evaluate stage's CSV carries
evaluate.json's bounds and the headline flag, every plot has a human title and a panel per protocol or
model, a model that was not trained only warns, and the command works before `npm ci --prefix plots`.
No browser here: tests/test_plots_browser.py draws the same repo in Chromium."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import yaml
from dvc_repo import BIN, ROOT, dvc_env, run_dvc
from real_params import real_config, real_params

MODELS = ("random", "item_knn", "fusion", "two_tower")  # two baselines, the two trained models
HEADLINE = "two_tower"
PROTOCOLS = ("sampled", "full", "cold")
PLOT_STAGES = ("evaluate", "ablate-summary")  # the stages that declare plots in dvc.yaml
NODE = shutil.which("node")
NODE_MODULES = ROOT / "plots" / "node_modules"


def _results(rng: np.random.Generator) -> list:
    """Evaluated models as the evaluator returns them: NDCG@10 with its interval per protocol."""
    from pixrec.evaluation.evaluator import ModelResult
    from pixrec.evaluation.metrics import LIST_K

    out = []
    for name in MODELS:
        metrics, per_user = {}, {}
        for protocol in PROTOCOLS:
            v = float(rng.uniform(0.05, 0.8))
            metrics[protocol] = {"ndcg@10": v, "ndcg@10_lo": v - 0.03, "ndcg@10_hi": min(v + 0.03, 1.0),
                                 "n_users": 5}
            idx = np.arange(5, dtype=np.int32)
            per_user[protocol] = (idx, idx, np.arange(1, 6, dtype=np.int64))
        out.append(ModelResult(name, metrics, per_user, np.zeros((5, LIST_K), np.int32), {}))
    return out


def _curves(live_dir: Path) -> None:
    """dvclive/<model>/plots as the train stages log them: the losses differ in scale (the reason for
    a panel per model)."""
    from dvclive import Live

    for model, (loss0, loss1) in {"fusion": (0.5, 0.2), "two_tower": (7.6, 5.8)}.items():
        with Live(str(live_dir / model), dvcyaml=None, save_dvc_exp=False, report=None) as live:
            for epoch in range(6):
                live.log_metric("train/loss", loss0 + (loss1 - loss0) * epoch / 5)
                live.log_metric("valid/ndcg@10", 0.05 + 0.03 * epoch)
                live.next_step()


def _ablation(repo: Path, rng: np.random.Generator) -> None:
    """metrics/ablation_plot.csv written by the real ablate-summary stage from one cell per variant."""
    from typer.testing import CliRunner

    from stages.ablate_summary import app

    cells = repo / "metrics" / "ablation"
    cells.mkdir(parents=True)
    for variant in real_params()["ablate"]["variants"]:
        (cells / f"{variant}.json").write_text(json.dumps({p: {m: float(rng.uniform(0.05, 0.8)) for m in (
            "ndcg@10", "recall@10", "mrr@10")} for p in PROTOCOLS}))
    metrics = repo / "metrics"
    result = CliRunner().invoke(app, [
        "--cells", str(cells), "--out", str(metrics / "ablation.json"), "--evaluate",
        str(metrics / "evaluate.json"), "--plot", str(metrics / "ablation_plot.csv"),
        "--params", str(ROOT / "params.yaml")])
    assert result.exit_code == 0, result.output


def make_plots_repo(root: Path, seed: int = 0) -> Path:
    """A git + DVC repo with the project's plot definitions (dvc.yaml's top-level plots and the plots of
    its stages, .dvc/plots, .dvc/config, plots/fallback.html) and plot files from the real writers. No
    plots/offline.html: as a fresh clone before `npm ci --prefix plots`."""
    from pixrec.evaluation.intervals import IntervalConfig
    from pixrec.evaluation.output import write_outputs

    repo = root / "repo"
    repo.mkdir(parents=True)
    for cmd in (["git", "init", "-q"], [str(BIN / "dvc"), "init", "-q"]):
        subprocess.run(cmd, cwd=repo, env=dvc_env(), check=True, capture_output=True)
    shutil.copy(ROOT / ".dvc" / "config", repo / ".dvc" / "config")
    shutil.copytree(ROOT / ".dvc" / "plots", repo / ".dvc" / "plots")
    (repo / "plots").mkdir()
    shutil.copy(ROOT / "plots" / "fallback.html", repo / "plots" / "fallback.html")
    pipeline = yaml.safe_load((ROOT / "dvc.yaml").read_text(encoding="utf-8"))
    stages = {name: {"cmd": pipeline["stages"][name]["cmd"], "plots": pipeline["stages"][name]["plots"]}
              for name in PLOT_STAGES}
    (repo / "dvc.yaml").write_text(yaml.safe_dump({"stages": stages, "plots": pipeline["plots"]},
                                                  sort_keys=False))
    rng = np.random.default_rng(seed)
    metrics = repo / "metrics"
    metrics.mkdir()
    write_outputs(_results(rng), "item_knn", real_config(IntervalConfig), repo / "data" / "eval",
                  metrics / "evaluate.json", metrics / "evaluate_plot.csv", {}, headline=HEADLINE)
    _ablation(repo, rng)
    _curves(repo / "dvclive")
    return repo


def plots_json(repo: Path) -> dict:
    """`dvc plots show --json`: {"data": {plot id: [{"type", "content": vega-lite spec}]}, "errors"}."""
    return json.loads(run_dvc(repo, "plots", "show", "--json").stdout)


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    return make_plots_repo(tmp_path_factory.mktemp("plots"))


def test_plot_csv_holds_evaluate_json_values_bounds_and_the_headline(repo):
    evaluated = json.loads((repo / "metrics" / "evaluate.json").read_text())
    plot = pl.read_csv(repo / "metrics" / "evaluate_plot.csv")
    assert plot.height == len(MODELS) * len(PROTOCOLS)
    for row in plot.iter_rows(named=True):
        m = evaluated[row["model"]][row["protocol"]]
        assert (row["value"], row["lo"], row["hi"]) == (m["ndcg@10"], m["ndcg@10_lo"], m["ndcg@10_hi"])
        assert row["headline"] == (row["model"] == HEADLINE)


def test_plots_show_works_before_npm_ci(repo):
    """A fresh clone has no plots/offline.html (npm builds it): DVC must still write the page (it used to
    stop with "HTML template has to contain '{plot_divs}'", exit 255), and the page says what npm adds."""
    assert not (repo / "plots" / "offline.html").exists()
    run_dvc(repo, "plots", "show", "-o", "fallback_out")
    page = (repo / "fallback_out" / "index.html").read_text()
    assert "npm ci --prefix plots" in page and "cdn.jsdelivr.net" in page  # online: DVC's CDN scripts
    assert page.count("vegaEmbed(") == 4  # every plot of the project's dvc.yaml


def test_every_plot_has_a_human_title_and_a_panel_per_protocol_or_model(repo):
    shown = plots_json(repo)
    assert not shown.get("errors")
    specs = {pid: entries[0]["content"] for pid, entries in shown["data"].items()}
    assert len(specs) == 4
    for pid, spec in specs.items():
        title = spec["title"]["text"] if isinstance(spec["title"], dict) else spec["title"]
        assert title and "/" not in title and not title.endswith((".csv", ".tsv")), (pid, title)
        data = spec["data"]["values"]
        if pid in ("Training loss", "Validation NDCG@10"):  # a panel per model, each its own y axis
            assert spec["resolve"]["scale"]["y"] == "independent"
            assert {row["filename"].split("/")[-5] for row in data} == {"fusion", "two_tower"}
            assert "model" in json.dumps(spec["transform"]) and spec["facet"]["column"]["field"] == "model"
            continue
        # the bar charts: a panel per protocol, one bar per row, each at most 1 (not stacked to 1.2)
        assert spec["facet"]["column"]["field"] == "protocol" and spec["facet"]["row"]["field"] == "rev"
        x = spec["spec"]["layer"][0]["encoding"]["x"]["field"]
        assert '"y": {"field": "row_label"' in json.dumps(spec["spec"])  # a bar per model or variant
        keys = [(row["protocol"], row.get("model", row.get("variant"))) for row in data]
        assert len(keys) == len(set(keys)) and all(0 <= float(row[x]) <= 1 for row in data)
    evaluate = specs["metrics/evaluate_plot.csv"]
    layers = json.dumps(evaluate["spec"]["layer"])
    assert '"field": "lo"' in layers and '"field": "hi"' in layers  # the interval is drawn
    assert "(headline)" in json.dumps(evaluate["transform"])


def test_a_model_that_was_not_trained_only_warns(repo, tmp_path):
    """models.fit may leave a model out: its curves are missing, and the other model's still draw."""
    clone = tmp_path / "clone"
    shutil.copytree(repo, clone, symlinks=True)
    shutil.rmtree(clone / "dvclive" / "fusion")
    shown = plots_json(clone)
    assert {e["source"] for e in shown["errors"]} == {"dvclive/fusion/plots/metrics/train/loss.tsv",
                                                     "dvclive/fusion/plots/metrics/valid/ndcg@10.tsv"}
    curves = shown["data"]["Training loss"][0]["content"]["data"]["values"]
    assert curves and all("two_tower" in row["filename"] for row in curves)
    run_dvc(clone, "plots", "show", "-o", "out")  # and the page is written


@pytest.mark.skipif(NODE is None or not NODE_MODULES.is_dir(),
                    reason="needs node and `npm ci --prefix plots`")
def test_npm_postinstall_points_dvc_at_the_offline_page(repo, tmp_path):
    """plots/build-template.js (npm's postinstall) builds plots/offline.html and sets it in
    .dvc/config.local, keeping what the user has there; run twice, it changes nothing more."""
    clone = tmp_path / "clone"
    shutil.copytree(repo, clone, symlinks=True)
    shutil.copy(ROOT / "plots" / "build-template.js", clone / "plots" / "build-template.js")
    os.symlink(NODE_MODULES, clone / "plots" / "node_modules")
    local = clone / ".dvc" / "config.local"
    local.write_text("[core]\n    autostage = true\n[plots]\n    auto_open = false\n")
    for _ in range(2):
        subprocess.run([NODE, "plots/build-template.js"], cwd=clone, check=True, capture_output=True)
        assert local.read_text() == ("[core]\n    autostage = true\n[plots]\n"
                                     "    html_template = ../plots/offline.html\n    auto_open = false\n")
    assert "{plot_divs}" in (clone / "plots" / "offline.html").read_text()
    run_dvc(clone, "plots", "show", "-o", "offline_out")
    page = (clone / "offline_out" / "index.html").read_text()
    assert "cdn.jsdelivr.net" not in page and "npm ci --prefix plots" not in page
