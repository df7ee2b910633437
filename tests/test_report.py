"""The report shows exactly the numbers in the files — intervals, paired tests, tuned knobs, the
ablation — and the evaluator's own ranks and top-10 lists, rewrites only the README's results section,
and builds when models are missing. Its inputs come from the real split, tune and evaluate code on a
tiny dataset; the report itself loads no model."""

from __future__ import annotations

import csv
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import yaml
from PIL import Image
from real_params import real_config, real_section

from pixrec import schema

N_USERS, N_ITEMS, N_NEW, TAGS = 40, 60, 6, ("music", "food", "games", "travel")
BASELINES = ["random", "most_popular", "item_knn", "user_knn", "content_knn"]
KNOBS = {"random": {}, "most_popular": {}, "item_knn": {"k": [5, 20]}, "user_knn": {"k": [5, 10]},
         "content_knn": {"image_weight": [0.0, 0.5]}}
# the fitted models' rows: real recommenders evaluated under the fitted models' names (the report
# keys on names; it never loads a model). The headline's ID-only scores leave ties, so its pessimistic
# ranks (the evaluator's rule) differ from "1 + items scored strictly higher" for some users.
FITTED = {"fusion": ("item_knn", {"k": 5}), "two_tower": ("user_knn", {"k": 10})}
LINEUP = {"fit": ["fusion", "two_tower"], "headline": "two_tower"}
ABLATION = {  # the headline model's ablation, as the ablate stage records each variant's overrides
    "full": {},
    "no_image": {"model.tokens": ["item", "tag", "text"]},
    "ids_only": {"model.tokens": ["item"]},
    "lifetime_counts": {"model.tokens": ["item", "tag", "text", "image", "counts"]},
    "bce": {"model.loss": "bce"},
    "no_id_dropout": {"model.id_dropout": 0.0},
    "mean_fusion": {"model.pooling": "mean"},
    "no_freshness": {"model.age_buckets": 0},
    "rerank": {"rerank": 100},
}


class Named:
    """A real recommender evaluated under another name."""

    def __init__(self, rec, name: str) -> None:
        self.rec, self.name, self.n_items = rec, name, rec.n_items

    def score(self, users, items):
        return self.rec.score(users, items)

    def score_all(self, users):
        return self.rec.score_all(users)


# --- fixture: a tiny raw dataset, its real split, tuning and evaluation ------------------------------
def _write_raw(raw: Path, rng: np.random.Generator) -> None:
    (raw / schema.RAW_COVERS).mkdir(parents=True)
    rows = []
    for u in range(N_USERS):
        items = rng.choice(N_ITEMS - N_NEW, size=int(rng.integers(6, 10)), replace=False)
        if u % 3 == 0:  # a new release as the last interaction: a cold test item
            items = np.append(items, N_ITEMS - N_NEW + u % N_NEW)
        t0 = 1_600_000_000 + int(rng.integers(0, 10_000))
        rows += [(f"i{i}", f"u{u}", t0 + 100 * j) for j, i in enumerate(items)]
    with open(raw / schema.RAW_INTERACTIONS, "w", newline="") as f:
        csv.writer(f).writerows([schema.INTERACTION_COLUMNS, *rows])
    with open(raw / schema.RAW_ITEMS, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(schema.ITEM_COLUMNS)
        for i in range(N_ITEMS):
            counts = [int(x) for x in rng.integers(0, 5000, len(schema.COUNT_COLUMNS))]
            title = "Café <b>&amp; noodles</b>, ünïcode" if i == 7 else ("" if i == 8 else f"item {i} title")
            w.writerow([f"i{i}", *counts, title, TAGS[i % len(TAGS)], f"about item {i}"])
    for i in range(N_ITEMS):
        path = raw / schema.RAW_COVERS / f"i{i}.jpg"
        if i in (3, 4):
            continue  # missing covers
        if i == 5:
            path.write_bytes(b"not a jpeg at all")  # corrupt cover
            continue
        colour = tuple(int(c) for c in rng.integers(0, 255, 3))
        img = Image.new("RGB", (64, 48), colour)
        img.paste((255 - colour[0], 40, 90), (8, 8, 30, 30))
        img.save(path, quality=85)
    (raw / schema.RAW_TRUTH).mkdir()  # what the synthetic source writes beside its data


def _tune_and_evaluate(p: dict[str, Path], data) -> None:
    """metrics/tuning.json, metrics/evaluate.json and data/eval/ from the tune and evaluate code."""
    from pixrec.baselines.base import FitContext, make_baseline
    from pixrec.evaluation.candidates import SampledCandidates
    from pixrec.evaluation.config import EvalConfig
    from pixrec.evaluation.evaluator import (
        attach_intervals,
        evaluate_baselines,
        evaluate_model,
        reference_model,
    )
    from pixrec.evaluation.intervals import IntervalConfig
    from pixrec.evaluation.output import write_outputs
    from pixrec.evaluation.tuning import TuneConfig, load_validation_split, tune_all, write_tuning
    from pixrec.features import load_embeddings
    from pixrec.negatives import NegativesConfig, sampled_candidates

    vectors = load_embeddings(p["embeddings"], data.n_items)
    tune = real_config(TuneConfig, names=BASELINES, knobs=KNOBS, batch_users=64, valid_users=None)
    tuned = tune_all(load_validation_split(p["split"]), vectors, tune, log=lambda _: None)
    write_tuning(tuned, p["root"] / "data/tuning", p["metrics"] / "tuning.json", {})
    config = real_config(EvalConfig, batch_users=16)
    sampled = SampledCandidates(*sampled_candidates(data, real_config(NegativesConfig)))
    ctx = FitContext(data, vectors, tuned.seed, chosen=tuned.chosen)
    results = evaluate_baselines(ctx, sampled, config, log=lambda _: None)
    results += [evaluate_model(Named(make_baseline(base, ctx, knobs), name), data, sampled, config)
                for name, (base, knobs) in FITTED.items()]
    reference = reference_model(results, BASELINES)
    intervals = real_config(IntervalConfig, resamples=200)
    attach_intervals(results, reference, intervals, config.seed)
    write_outputs(results, reference, intervals, p["eval"], p["metrics"] / "evaluate.json",
                  p["metrics"] / "evaluate_plot.csv", {}, headline=LINEUP["headline"])


def _train_logs(p: dict[str, Path], rng: np.random.Generator) -> None:
    """metrics/train/<model>.json and the dvclive curves, as the train stages write them."""
    from dvclive import Live

    (p["metrics"] / "train").mkdir()
    for model in LINEUP["fit"]:
        with Live(str(p["live"] / model), dvcyaml=None, save_dvc_exp=False, report=None) as live:
            for epoch in range(5):
                live.log_metric("train/loss", 0.7 - 0.05 * epoch)
                live.log_metric("valid/ndcg@10", 0.05 + 0.01 * epoch + 0.001 * float(rng.random()))
                live.next_step()
        (p["metrics"] / "train" / f"{model}.json").write_text(json.dumps(
            {"best_epoch": 3, "best_val_ndcg@10": 0.08, "epochs_run": 5}))


def make_report_inputs(root: Path, seed: int = 0) -> dict[str, Path]:
    """Every input of the report stage under ``root``, built from real library code."""
    from pixrec.data.dataset import SplitData
    from pixrec.data.split import SplitConfig, split_raw

    rng = np.random.default_rng(seed)
    p = {name: root / rel for name, rel in {
        "root": ".", "raw": "data/raw", "split": "data/split", "embeddings": "data/embeddings",
        "eval": "data/eval", "metrics": "metrics", "live": "dvclive", "out": "reports"}.items()}
    _write_raw(p["raw"], rng)
    split_raw(p["raw"], p["split"], real_config(SplitConfig))
    data = SplitData.load(p["split"])
    for side, dim in (("image", 6), ("text", 8)):
        d = p["embeddings"] / side
        d.mkdir(parents=True)
        np.save(d / schema.EMB_FILE, rng.standard_normal((data.n_items, dim)).astype(np.float32))
        has_cover = data.items[schema.COVER_PATH].is_not_null().to_numpy()
        np.save(d / schema.EMB_MASK_FILE, has_cover | (side == "text"))
    p["metrics"].mkdir()
    _tune_and_evaluate(p, data)
    _train_logs(p, rng)
    ablation = {v: {**{proto: {"recall@10": float(rng.random()), "ndcg@10": float(rng.random()),
                               "mrr@10": 0.1} for proto in ("sampled", "full", "cold")},
                    "variant": overrides, "model": "two_tower", "train": {"best_epoch": 2}}
                for v, overrides in ABLATION.items()}
    (p["metrics"] / "ablation.json").write_text(json.dumps(ablation))
    return p


def build(p: dict[str, Path], readme: Path | None = None, lineup: dict | None = None, **config) -> dict:
    from pixrec.report.build import Lineup, ReportConfig, ReportInputs, build_report

    cfg = real_config(ReportConfig, **{"n_example_users": 6, **config})
    src = ReportInputs(p["metrics"], p["live"], p["split"], p["raw"], p["embeddings"], p["eval"])
    return build_report(src, p["out"], cfg, Lineup(**(lineup or LINEUP)), readme=readme)


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> dict[str, Path]:
    p = make_report_inputs(tmp_path_factory.mktemp("report"))
    build(p)
    return p


# --- parsing the page -----------------------------------------------------------------------------
class Cells(HTMLParser):
    """(table, row, col) -> (text, bold) for every data cell of a ``data-table``; row labels; the
    example and figure attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: dict[tuple[str, str, str], tuple[str, bool]] = {}
        self.labels: dict[tuple[str, str], str] = {}
        self.examples: list[dict] = []
        self.figures: list[dict] = []  # attrs of every <figure>, with the example it sits in
        self._tables: list[str | None] = []
        self._row: str | None = None
        self._cell: list = []  # [col, text, bold] of the open data cell (or the row label: col "")
        self._example: dict | None = None
        self._depth = 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table":
            self._tables.append(a.get("data-table"))
        elif tag == "tr" and self._tables and self._tables[-1]:
            self._row = a.get("data-row")
        elif tag in ("td", "th") and self._tables and self._tables[-1] and self._row and not self._cell:
            self._cell = [a.get("data-col", ""), "", False]
        elif tag == "b" and self._cell:
            self._cell[2] = True
        elif tag == "div":
            if "data-heldout-item" in a:
                self._example = {**a, "figures": []}
                self.examples.append(self._example)
                self._depth = 0
            self._depth += 1
        elif tag == "figure":
            self.figures.append(a)
            if self._example is not None:
                self._example["figures"].append(a)

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell:
            col, text, bold = self._cell
            key = (self._tables[-1], self._row)
            if col:
                self.cells[(*key, col)] = (" ".join(text.split()), bold)
            else:
                self.labels[key] = text.strip()
            self._cell = []
        elif tag == "table" and self._tables:
            self._tables.pop()
        elif tag == "div" and self._example is not None:
            self._depth -= 1
            if self._depth == 0:
                self._example = None

    def handle_data(self, data):
        if self._cell and (self._tables[-1] or not data.strip()):
            self._cell[1] += data


def parse(path: Path) -> Cells:
    cells = Cells()
    cells.feed(path.read_text(encoding="utf-8"))
    return cells


def shown(value: float | None, lo: float | None = None, hi: float | None = None) -> str:
    """The report's cell text, worked here independently of its code."""
    if value is None:
        return "–"
    return f"{value:.4f}" + (f" [{lo:.4f}, {hi:.4f}]" if lo is not None else "")


def signed(x: float) -> str:
    return f"{x:+.4f}".replace("-", "−")


# --- tests ----------------------------------------------------------------------------------------
def test_model_tables_hold_the_numbers_and_intervals_of_evaluate_json(report):
    from pixrec.report.tables import columns as table_columns

    metrics = json.loads((report["metrics"] / "evaluate.json").read_text())
    about = metrics.pop("intervals")
    page = parse(report["out"] / "index.html")
    for protocol in ("sampled", "full", "cold"):
        columns = table_columns(protocol)
        cells = {(r, c) for (t, r, c) in page.cells if t == protocol}
        assert {r for r, _ in cells} == set(metrics) == {*BASELINES, *FITTED}
        assert {c for _, c in cells} == {k for k, _ in columns} | {"vs_reference"}
        for model, blocks in metrics.items():
            m = blocks[protocol]
            for key, _ in columns:
                text, _ = page.cells[(protocol, model, key)]
                expected = shown(m.get(key), m.get(f"{key}_lo"), m.get(f"{key}_hi"))
                assert text == expected, (protocol, model, key)
            assert "[" in page.cells[(protocol, model, "ndcg@10")][0]  # a rank metric carries its interval
            versus = page.cells[(protocol, model, "vs_reference")][0]
            if model == about["reference"]:
                assert versus == "reference"
            else:  # Δ, its paired interval and the Wilcoxon p-value
                p = m["ndcg@10_p"]
                assert versus == (f"{signed(m['ndcg@10_diff'])} [{signed(m['ndcg@10_diff_lo'])}, "
                                  f"{signed(m['ndcg@10_diff_hi'])}], "
                                  + ("p < 0.001" if p < 0.001 else f"p = {p:.3f}"))
        # best point estimate per column bold (ties all bold); Novelty_P never bold
        for key, _ in columns:
            vals = {m: f"{metrics[m][protocol][key]:.4f}" for m in metrics}
            best = max(vals.values(), key=float)
            bold = {m for m in metrics if page.cells[(protocol, m, key)][1]}
            assert bold == (set() if key == "novelty_p" else {m for m, v in vals.items() if v == best})
    assert page.labels[("full", "two_tower")].endswith("(headline)")
    assert page.labels[("full", "fusion")] == "Fusion (six-token pair model, the poster's)"
    html = (report["out"] / "index.html").read_text()
    assert "Krichene" in html and "1 − R@10/10" in html and "95% bootstrap interval" in html
    assert "200 resamples" in html and "wilcoxon" in html.lower()


def test_ranks_and_lists_shown_are_the_evaluators(report):
    """Every example's rank is data/eval's rank and its list data/eval's top-10 — not a re-ranking,
    which (ties in the held-out item's favour) differs for some of these users."""
    import pixrec.baselines.catalog  # noqa: F401  (registers every baseline)
    from pixrec.baselines.base import FitContext, make_baseline
    from pixrec.data.dataset import SplitData

    data = SplitData.load(report["split"])
    item_id = data.items[schema.ITEM_ID].to_list()
    user_of = {u: i for i, u in enumerate(data.users[schema.USER_ID].to_list())}
    ranks = pl.read_parquet(report["eval"] / schema.EVAL_RANKS_FILE).filter(
        (pl.col("model") == "two_tower") & (pl.col("protocol") == "full"))
    rank_of = dict(zip(ranks[schema.USER_IDX].to_list(), ranks["rank"].to_list(), strict=True))
    top = pl.read_parquet(report["eval"] / schema.EVAL_TOP_FILE).filter(pl.col("model") == "two_tower")
    top_of = dict(zip(top[schema.USER_IDX].to_list(), top["top_items"].to_list(), strict=True))
    base, knobs = FITTED["two_tower"]
    scores = make_baseline(base, FitContext(data, None, 0), knobs).score_all(np.arange(data.n_users))
    seen = data.seen_matrix.toarray().astype(bool)
    page = parse(report["out"] / "index.html")
    assert len(page.examples) == 6 + 1  # six examples and the best case
    regranked = 0
    for ex in page.examples:
        u = user_of[ex["data-user"]]
        shown_rank = int(ex["data-heldout-rank"])
        assert shown_rank == rank_of[u]
        listed = [f["data-item"] for f in ex["figures"] if f.get("data-list") == "top"]
        assert listed == [item_id[i] for i in top_of[u] if i >= 0]
        marked = [f for f in ex["figures"] if f.get("data-heldout") == "1"]
        assert [f["data-item"] for f in marked] == [ex["data-heldout-item"]]
        assert (marked[0].get("data-list") == "top") == (ex["data-heldout-item"] in listed)
        target = item_id.index(ex["data-heldout-item"])
        own = 1 + int((scores[u][~seen[u]] > scores[u, target]).sum())  # the old report's rule
        regranked += own != shown_rank
    assert regranked >= 1  # the page would show other numbers had it ranked on its own
    assert int(page.examples[-1]["data-heldout-rank"]) == ranks["rank"].min()  # the best case
    md = (report["out"] / "index.md").read_text()
    assert md.count("**[held out]**") >= 7
    for img in re.findall(r"\]\((img/[^)]+)\)", md):
        assert (report["out"] / img).is_file()


def test_examples_hold_history_and_mask_it_like_evaluation(report):
    from pixrec.data.dataset import SplitData

    data = SplitData.load(report["split"])
    item_id = data.items[schema.ITEM_ID].to_list()
    user_of = {u: i for i, u in enumerate(data.users[schema.USER_ID].to_list())}
    test_item = dict(zip(data.test.users.tolist(), data.test.items.tolist(), strict=True))
    page = parse(report["out"] / "index.html")
    hits = 0
    for ex in page.examples[:-1]:
        u = user_of[ex["data-user"]]
        assert ex["data-heldout-item"] == item_id[test_item[u]]
        history = [f["data-item"] for f in ex["figures"] if f.get("data-list") == "history"]
        top = [f["data-item"] for f in ex["figures"] if f.get("data-list") == "top"]
        seen_ids = {item_id[i] for i in data.seen_matrix[u].indices}
        assert 1 <= len(history) <= 5 and set(history) <= seen_ids and not seen_ids & set(top)
        hits += int(ex["data-heldout-rank"]) <= 10
    assert hits == 3  # half of the six examples are hits


def test_tuning_table_shows_the_chosen_knobs_and_curves(report):
    tuning = json.loads((report["metrics"] / "tuning.json").read_text())
    page = parse(report["out"] / "index.html")
    html = (report["out"] / "index.html").read_text()
    assert {r for (t, r, _) in page.cells if t == "tuning"} == set(BASELINES)
    for name, entry in tuning.items():
        assert page.cells[("tuning", name, "valid_ndcg@10")][0] == f"{entry['valid_ndcg@10']:.4f}"
        searched = KNOBS[name]
        expected = ", ".join(f"{k}={entry['chosen'][k]}" for k in searched) or "–"
        assert page.cells[("tuning", name, "searched")][0] == expected
        block = re.search(rf'<table class="curve" data-curve="{name}">(.*?)</table>', html, re.S).group(1)
        points = re.findall(r"<tr( data-chosen=\"1\")?><td class=\"text\">([^<]+)</td><td>(?:<b>)?([0-9.]+)",
                            block)
        assert {s: float(v) for _, s, v in points} == pytest.approx(entry["curve"], abs=5e-5)
        chosen = [s for mark, s, _ in points if mark]
        assert len(chosen) == 1 and entry["curve"][chosen[0]] == entry["valid_ndcg@10"]
    assert html.count('<svg class="curve"') == sum(len(e["curve"]) > 1 for e in tuning.values())
    md = (report["out"] / "index.md").read_text()
    assert "## Validation curves" in md and md.count("**chosen**") == len(tuning)


def test_ablation_rows_describe_each_variant_from_its_overrides(report):
    ablation = json.loads((report["metrics"] / "ablation.json").read_text())
    page = parse(report["out"] / "index.html")
    assert [r for (t, r) in page.labels if t == "ablation"] == list(ABLATION)  # full first, file order
    for v in ABLATION:
        for proto in ("sampled", "full", "cold"):
            for metric in ("recall@10", "ndcg@10"):
                cell = page.cells[("ablation", v, f"{proto}/{metric}")][0]
                assert cell == f"{ablation[v][proto][metric]:.4f}"
    assert "LEAK" in page.labels[("ablation", "lifetime_counts")]
    assert all("LEAK" not in page.labels[("ablation", v)] for v in ABLATION if v != "lifetime_counts")
    notes = re.findall(r'<p class="note">([^<]*)</p>', (report["out"] / "index.html").read_text())
    sentences = {v: next(n for n in notes if n.startswith(f"{v} (")) for v in list(ABLATION)[1:]}
    for v, text in sentences.items():
        delta = ablation[v]["full"]["ndcg@10"] - ablation["full"]["full"]["ndcg@10"]
        assert f"changes full NDCG@10 by {signed(delta)} " in text, v
        assert "cold NDCG@10 by" in text and "sampled NDCG@10 by" in text
    assert "re-ranks the top 100" in sentences["rerank"] and "bce loss" in sentences["bce"]
    assert "input tokens item, tag, text)" in sentences["no_image"]
    assert "no item-ID dropout" in sentences["no_id_dropout"] and "mean pooling" in sentences["mean_fusion"]
    assert "no freshness bias" in sentences["no_freshness"]
    assert sentences["lifetime_counts"].startswith("lifetime_counts (LEAK: lifetime counts, a leak of future")
    assert "Ablation of Two-tower" in (report["out"] / "index.html").read_text()


def test_training_section_per_fitted_model(report):
    html = (report["out"] / "index.html").read_text()
    for model in LINEUP["fit"]:
        assert f'id="training-curve-{model}"' in html
        assert (report["out"] / f"training_curve_{model}.png").is_file()
    assert "(BCE)" not in html


def test_report_builds_without_the_fitted_models(report, tmp_path):
    """Only baselines ran: no row, no examples, no training section for the models — and it says so."""
    p = dict(report, out=tmp_path / "baselines_only", metrics=tmp_path / "metrics")
    p["metrics"].mkdir()
    evaluate = json.loads((report["metrics"] / "evaluate.json").read_text())
    for model in LINEUP["fit"]:
        del evaluate[model]
    (p["metrics"] / "evaluate.json").write_text(json.dumps(evaluate))
    build(p, lineup={"fit": ["fusion", "two_tower", "my_new_model"], "headline": "my_new_model"})
    html = (p["out"] / "index.html").read_text()
    page = parse(p["out"] / "index.html")
    assert {r for (t, r, _) in page.cells if t == "full"} == set(BASELINES)
    assert not page.examples and 'id="examples"' not in html and 'id="training"' not in html
    for missing in ("my_new_model is in models.fit but not in", "no full-ranking results of the headline "
                    "model my_new_model", "tuning.json is missing", "ablation.json is missing",
                    "my_new_model.json is missing"):
        assert missing in html, missing


def test_worst_distractor_ignores_the_users_own_test_item():
    from pixrec.report.examples import worst_distractor
    from pixrec.report.inputs import ModelRanks

    top = np.array([[3, 5, 1], [3, 5, 2], [3, 5, 0], [3, 4, 0], [2, 1, 0], [-1, -1, -1]])
    ranks = ModelRanks("m", np.arange(6), targets=np.array([3, 3, 3, 3, 7, 6]),
                       ranks=np.array([1, 1, 1, 1, 50, 9]), top=top)
    d = worst_distractor(8, np.array([5, 0, 3, 9, 1, 2, 0, 0]), ranks, lambda i: i)  # type: ignore[arg-type]
    assert d.thumb == 0 and d.n_lists == 3 and d.n_users == 6  # item 3 (4 lists) was always a hit
    assert d.train_popularity == 5 and d.popularity_rank == 2


def test_eval_outputs_of_another_split_are_an_input_error(report, tmp_path):
    from pixrec.errors import InputError
    from pixrec.report.inputs import read_model_ranks

    ranks = pl.read_parquet(report["eval"] / schema.EVAL_RANKS_FILE)
    bad = tmp_path / "eval"
    bad.mkdir()
    ranks.with_columns(pl.col(schema.ITEM_IDX) + 1000).write_parquet(bad / schema.EVAL_RANKS_FILE)
    (bad / schema.EVAL_TOP_FILE).write_bytes((report["eval"] / schema.EVAL_TOP_FILE).read_bytes())
    with pytest.raises(InputError, match=r"ranks.parquet: two_tower's item_idx \d+ is outside"):
        read_model_ranks(bad, "two_tower", N_USERS, N_ITEMS)


def test_readme_results_section_rewritten_between_markers_only(report, tmp_path):
    from pixrec.report.readme import END, START

    readme = tmp_path / "README.md"
    before, after = "# title\n\nintro text\n\n## Results\n\n", "\n\n## Licence\n\nMIT\n"
    readme.write_text(f"{before}{START}\nold table\n{END}{after}")
    p = dict(report, out=tmp_path / "reports")
    assert build(p, readme=readme)["readme_changed"]
    text = readme.read_text()
    assert text.startswith(before + START + "\n") and text.endswith(END + after)
    section = text[len(before) + len(START) : -len(END + after)]
    assert "old table" not in section and "built-in synthetic" in section
    metrics = json.loads((report["metrics"] / "evaluate.json").read_text())
    full = metrics["two_tower"]["full"]
    assert f"| {shown(full['ndcg@10'], full['ndcg@10_lo'], full['ndcg@10_hi'])} |" in section
    assert "Two-tower (multimodal item tower, sequential user tower) (headline)" in section
    assert "chosen (searched)" in section and "lifetime_counts (LEAK" in section
    assert "<img" not in section and "data:image" not in section
    assert not build(p, readme=readme)["readme_changed"]  # same inputs, same README
    readme.write_text("# no markers here\n")
    with pytest.raises(ValueError, match="results:start"):
        build(p, readme=readme)


def test_report_is_deterministic_and_names_the_dataset(report, tmp_path):
    p = dict(report, out=tmp_path / "again")
    build(p)
    for name in ("index.html", "index.md"):
        assert (p["out"] / name).read_bytes() == (report["out"] / name).read_bytes()
    html = (report["out"] / "index.html").read_text()
    assert f"{N_USERS} users" in html and "built-in synthetic" in html


def test_item_text_is_escaped(report):
    html = (report["out"] / "index.html").read_text()
    page = parse(report["out"] / "index.html")
    assert "i7" in {f["data-item"] for f in page.figures}  # the item with markup in its title is shown
    assert "<b>&amp; noodles</b>" not in html and "Café &lt;b&gt;&amp;amp; noodles" in html


def test_missing_and_corrupt_covers_become_labelled_placeholders(report):
    import io

    from pixrec.data.dataset import SplitData
    from pixrec.report.examples import Thumbnails

    data = SplitData.load(report["split"])
    thumbs = Thumbnails(report["raw"], data.items, 40)
    idx = {v: i for i, v in enumerate(data.items[schema.ITEM_ID].to_list())}
    for item, note in (("i3", "no cover"), ("i5", "unreadable cover"), ("i9", None)):
        t = thumbs(idx[item])
        assert t.note == note
        with Image.open(io.BytesIO(t.jpeg)) as img:
            assert img.format == "JPEG" and max(img.size) == 40


def test_stage_cli_and_clear_errors(report, tmp_path):
    from typer.testing import CliRunner

    from stages.report import app

    params = tmp_path / "params.yaml"
    section = {**real_section("report"), "n_example_users": 2, "seed": 3}
    params.write_text(yaml.safe_dump({"report": section, "models": LINEUP}))
    args = [f"--{k}={report[k]}" for k in ("metrics", "live", "split", "raw", "embeddings", "eval")]
    out = tmp_path / "cli"
    result = CliRunner().invoke(app, [*args, f"--out={out}", f"--params={params}",
                                      "--dataset-label=my PixelRec copy"])
    assert result.exit_code == 0, result.output
    html = (out / "index.html").read_text()
    assert "Dataset: my PixelRec copy" in html and len(parse(out / "index.html").examples) == 3
    (tmp_path / "m").mkdir()
    result = CliRunner().invoke(app, [*args[1:], "--metrics", str(tmp_path / "m"), f"--out={out}",
                                      f"--params={params}"])
    assert result.exit_code == 1 and "evaluate.json: missing; run the evaluate stage" in result.output
    params.write_text(yaml.safe_dump({"report": {**section, "n_examples": 2}, "models": LINEUP}))
    result = CliRunner().invoke(app, [*args, f"--out={out}", f"--params={params}"])
    assert result.exit_code == 1 and "report.n_examples: unknown key" in result.output
    params.write_text(yaml.safe_dump({"report": section, "models": {"fit": LINEUP["fit"]}}))
    result = CliRunner().invoke(app, [*args, f"--out={out}", f"--params={params}"])
    assert result.exit_code == 1 and "models.headline is missing" in result.output
