"""The report shows exactly the numbers in the files, rewrites only the README's results section,
and marks the held-out item in real top-k lists of a (tiny, random-weight) trained model."""

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

from pixrec import schema as S

N_USERS, N_ITEMS, TAGS = 40, 60, ("music", "food", "games", "travel")
MODELS = ("random", "most_popular", "item_knn", "user_knn", "ease", "content_knn", "fusion", "my_new_model")
VARIANTS = ("full", "no_image", "no_text", "no_counts", "ids_only", "content_only")


# --- fixture: a tiny raw dataset, its real split, random embeddings, a random-weight model ----------
def _write_raw(raw: Path, rng: np.random.Generator) -> None:
    (raw / S.RAW_COVERS).mkdir(parents=True)
    rows = []
    for u in range(N_USERS):
        items = rng.choice(N_ITEMS, size=int(rng.integers(6, 10)), replace=False)
        t0 = 1_600_000_000 + int(rng.integers(0, 10_000))
        rows += [(f"i{i}", f"u{u}", t0 + 100 * j) for j, i in enumerate(items)]
    with open(raw / S.RAW_INTERACTIONS, "w", newline="") as f:
        csv.writer(f).writerows([S.INTERACTION_COLUMNS, *rows])
    with open(raw / S.RAW_ITEMS, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(S.ITEM_COLUMNS)
        for i in range(N_ITEMS):
            counts = [int(x) for x in rng.integers(0, 5000, len(S.COUNT_COLUMNS))]
            title = "Café <b>&amp; noodles</b>, ünïcode" if i == 7 else ("" if i == 8 else f"item {i} title")
            w.writerow([f"i{i}", *counts, title, TAGS[i % len(TAGS)], f"about item {i}"])
    for i in range(N_ITEMS):
        path = raw / S.RAW_COVERS / f"i{i}.jpg"
        if i in (3, 4):
            continue  # missing covers
        if i == 5:
            path.write_bytes(b"not a jpeg at all")  # corrupt cover
            continue
        colour = tuple(int(c) for c in rng.integers(0, 255, 3))
        img = Image.new("RGB", (64, 48), colour)
        img.paste((255 - colour[0], 40, 90), (8, 8, 30, 30))
        img.save(path, quality=85)
    (raw / S.RAW_TRUTH).mkdir()  # what the synthetic source writes beside its data


def _metrics(rng: np.random.Generator) -> dict:
    def block(keys: list[str]) -> dict:
        return {k: float(rng.random()) for k in keys}

    sampled = ["recall@5", "ndcg@5", "recall@10", "ndcg@10", "mrr@10", "novelty_p"]
    full = [f"{m}@{k}" for k in (10, 20, 50) for m in ("recall", "ndcg", "mrr")]
    full += ["coverage@10", "novelty@10"]
    out = {}
    for m in MODELS:
        out[m] = {"sampled": {**block(sampled), "n_users": 12, "hit@3": 0.5},
                  "full": {**block(full), "n_users": 31, "extra": {"nested": 1}},
                  "cold": {**block(full), "n_users": 4}}
    del out["my_new_model"]["cold"]  # a model without a cold block, and a missing cell
    del out["my_new_model"]["full"]["mrr@50"]
    out["random"]["sampled"]["recall@5"] = out["fusion"]["sampled"]["recall@5"] = 0.99991  # a tie: both bold
    return out


def make_report_inputs(root: Path, seed: int = 0) -> dict[str, Path]:
    """Every input of the report stage under ``root``, built from real library code."""
    import torch

    from pixrec.data.dataset import SplitData
    from pixrec.data.split import SplitConfig, split_raw
    from pixrec.features import build_item_features, count_stats, load_embeddings
    from pixrec.models.fusion import FusionConfig, FusionModel, FusionRecommender, save_model
    from pixrec.report.examples import rank_users

    rng = np.random.default_rng(seed)
    p = {name: root / rel for name, rel in {
        "raw": "data/raw", "split": "data/split", "embeddings": "data/embeddings", "model": "models/fusion",
        "eval": "data/eval", "metrics": "metrics", "out": "reports"}.items()}
    _write_raw(p["raw"], rng)
    split_raw(p["raw"], p["split"], real_config(SplitConfig))
    data = SplitData.load(p["split"])
    for side, dim in (("image", 6), ("text", 8)):
        d = p["embeddings"] / side
        d.mkdir(parents=True)
        np.save(d / S.EMB_FILE, rng.standard_normal((data.n_items, dim)).astype(np.float32))
        np.save(d / S.EMB_MASK_FILE, data.items[S.COVER_PATH].is_not_null().to_numpy() | (side == "text"))
    torch.manual_seed(seed)
    stats = count_stats(data)
    feats = build_item_features(data, load_embeddings(p["embeddings"], data.n_items), stats)
    dims = {"n_users": data.n_users, "n_items": data.n_items, "n_tags": int(data.item_tags.max()),
            "n_count_features": int(feats.counts.shape[1]), "d_text": 8, "d_image": 6}
    config = real_config(FusionConfig, dim=16, heads=2, layers=1, mlp_hidden=16)
    model = FusionModel(config, **dims).eval()
    p["model"].mkdir(parents=True)
    history = [{"epoch": e, "loss": 0.7 - 0.05 * e, "val_ndcg@10": 0.05 + 0.01 * e, "epoch_s": 1.0}
               for e in range(5)]
    save_model(model, stats, dims, p["model"], {"metrics": {}, "history": history})

    # per-user results as the evaluator writes them: the model's own full-ranking ranks, plus others
    users = np.unique(data.test.users)
    ranked = rank_users(FusionRecommender(model, feats), data, users, k=10)
    test_item = np.full(data.n_users, -1, dtype=np.int32)
    test_item[data.test.users] = data.test.items
    random_rank = rng.integers(1, N_ITEMS, len(users))
    frames = [pl.DataFrame({S.USER_IDX: users.astype(np.int32), S.ITEM_IDX: test_item[users],
                            "model": model, "protocol": "full", "rank": rank})
              for model, rank in (("fusion", ranked.test_rank), ("random", random_rank))]
    p["eval"].mkdir(parents=True)
    pl.concat(frames).write_parquet(p["eval"] / S.EVAL_RANKS_FILE)  # the evaluate stage's file
    # another Parquet file of the same columns is not the contract: were it read, its rank 0 for the
    # fusion model's worst user would make that user the report's best case
    worst = frames[0].sort("rank").tail(1).with_columns(pl.lit(0).alias("rank"))
    worst.write_parquet(p["eval"] / "per_user.parquet")

    p["metrics"].mkdir()
    (p["metrics"] / "evaluate.json").write_text(json.dumps(_metrics(rng)))
    ablation = {v: {proto: {"recall@10": float(rng.random()), "ndcg@10": float(rng.random()), "mrr@10": 0.1}
                    for proto in ("sampled", "full", "cold")} for v in VARIANTS}
    (p["metrics"] / "ablation.json").write_text(json.dumps(ablation))
    (p["metrics"] / "train.json").write_text(json.dumps(
        {"best_epoch": 3, "best_val_ndcg@10": 0.08, "epochs_run": 5}))
    return p


def build(p: dict[str, Path], readme: Path | None = None, **config) -> dict:
    from pixrec.report import ReportConfig, build_report

    cfg = real_config(ReportConfig, **{"n_example_users": 4, "scan_users": 30, **config})
    return build_report(p["metrics"], p["split"], p["raw"], p["model"], p["embeddings"], p["eval"], p["out"],
                        cfg, readme=readme)


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> dict[str, Path]:
    p = make_report_inputs(tmp_path_factory.mktemp("report"))
    build(p)
    return p


# --- parsing the page -----------------------------------------------------------------------------
class Cells(HTMLParser):
    """(table, row, col) -> (text, bold) for every data cell; the example and figure attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: dict[tuple[str, str, str], tuple[str, bool]] = {}
        self.examples: list[dict] = []
        self.figures: list[dict] = []  # attrs of every <figure>, with the example it sits in
        self._table = self._row = self._col = None
        self._text, self._bold = "", False
        self._example: dict | None = None
        self._depth = 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table":
            self._table = a.get("data-table")
        elif tag == "tr":
            self._row = a.get("data-row")
        elif tag == "td":
            self._col, self._text, self._bold = a.get("data-col"), "", False
        elif tag == "b" and self._col:
            self._bold = True
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
        if tag == "td" and self._col:
            self.cells[(self._table, self._row, self._col)] = (self._text.strip(), self._bold)
            self._col = None
        elif tag == "div" and self._example is not None:
            self._depth -= 1
            if self._depth == 0:
                self._example = None

    def handle_data(self, data):
        if self._col:
            self._text += data


def parse(path: Path) -> Cells:
    cells = Cells()
    cells.feed(path.read_text(encoding="utf-8"))
    return cells


# --- tests ----------------------------------------------------------------------------------------
def test_model_tables_hold_exactly_the_numbers_in_evaluate_json(report):
    from pixrec.report.tables import FULL_COLUMNS, SAMPLED_COLUMNS

    metrics = json.loads((report["metrics"] / "evaluate.json").read_text())
    page = parse(report["out"] / "index.html")
    for protocol, columns in (("sampled", SAMPLED_COLUMNS), ("full", FULL_COLUMNS), ("cold", FULL_COLUMNS)):
        shown = {(r, c) for (t, r, c) in page.cells if t == protocol}
        expected_rows = {m for m in metrics if protocol in metrics[m]}
        assert {r for r, _ in shown} == expected_rows
        assert {c for _, c in shown} == {k for k, _ in columns}  # extra keys in the file are not shown
        for model in expected_rows:
            for key, _ in columns:
                text, _ = page.cells[(protocol, model, key)]
                value = metrics[model][protocol].get(key)
                assert text == (f"{value:.4f}" if value is not None else "–"), (protocol, model, key)
        # best per column bold (ties all bold); Novelty_P never bold
        for key, _ in columns:
            vals = {m: f"{metrics[m][protocol][key]:.4f}"
                    for m in expected_rows if key in metrics[m][protocol]}
            best = max(vals.values(), key=float)
            bold = {m for m in expected_rows if page.cells[(protocol, m, key)][1]}
            assert bold == (set() if key == "novelty_p" else {m for m, v in vals.items() if v == best})
    assert page.cells[("sampled", "random", "recall@5")] == page.cells[("sampled", "fusion", "recall@5")]
    assert page.cells[("sampled", "random", "recall@5")] == ("0.9999", True)  # the planted tie
    html = (report["out"] / "index.html").read_text()
    assert "Krichene" in html and "1 − R@10/10" in html and "12 test users" in html


def test_ablation_table_and_sentences_come_from_ablation_json(report):
    ablation = json.loads((report["metrics"] / "ablation.json").read_text())
    page = parse(report["out"] / "index.html")
    rows = {r for (t, r, _) in page.cells if t == "ablation"}
    assert rows == set(VARIANTS)
    for v in VARIANTS:
        for proto in ("sampled", "full", "cold"):
            for metric in ("recall@10", "ndcg@10"):
                shown = page.cells[("ablation", v, f"{proto}/{metric}")][0]
                assert shown == f"{ablation[v][proto][metric]:.4f}"
    html = (report["out"] / "index.html").read_text()
    for v in VARIANTS[1:]:
        delta = ablation[v]["full"]["ndcg@10"] - ablation["full"]["full"]["ndcg@10"]
        sentence = re.search(rf"<p class=\"note\">[^<]*\({v}\) changes full NDCG@10 by ([^ ]+) ", html)
        assert sentence, v
        assert sentence.group(1) == f"{delta:+.4f}".replace("-", "−")


def test_examples_mark_the_held_out_item_in_real_top_lists(report):
    from pixrec.data.dataset import SplitData

    data = SplitData.load(report["split"])
    item_id = data.items[S.ITEM_ID].to_list()
    user_of = {u: i for i, u in enumerate(data.users[S.USER_ID].to_list())}
    test_item = dict(zip(data.test.users.tolist(), data.test.items.tolist(), strict=True))
    seen = data.seen_matrix
    page = parse(report["out"] / "index.html")
    assert len(page.examples) == 4 + 1  # four examples and the best case
    hits = 0
    for ex in page.examples:
        u = user_of[ex["data-user"]]
        assert ex["data-heldout-item"] == item_id[test_item[u]]
        marked = [f for f in ex["figures"] if f.get("data-heldout") == "1"]
        assert [f["data-item"] for f in marked] == [ex["data-heldout-item"]]
        top = [f["data-item"] for f in ex["figures"] if f.get("data-list") == "top"]
        history = [f["data-item"] for f in ex["figures"] if f.get("data-list") == "history"]
        assert len(top) == 10 and len(set(top)) == 10 and 1 <= len(history) <= 5
        in_top = int(ex["data-heldout-rank"]) <= 10
        assert (marked[0].get("data-list") == "top") == in_top
        if in_top:
            assert top.index(ex["data-heldout-item"]) + 1 == int(ex["data-heldout-rank"])
        hits += in_top
        seen_ids = {item_id[i] for i in seen[u].indices}
        assert set(history) <= seen_ids and not seen_ids & set(top)  # history masked, as in evaluation
    assert hits >= 2  # about half the examples are hits, and the best case is one
    # the best case is the best rank of the evaluator's per-user results
    ranks = pl.read_parquet(report["eval"] / S.EVAL_RANKS_FILE).filter(pl.col("model") == "fusion")
    assert int(page.examples[-1]["data-heldout-rank"]) == ranks["rank"].min()
    md = (report["out"] / "index.md").read_text()
    assert md.count("**[held out]**") >= 5
    for img in re.findall(r"\]\((img/[^)]+)\)", md):
        assert (report["out"] / img).is_file()


def test_worst_distractor_ignores_the_users_own_test_item():
    from pixrec.report.examples import Ranked, worst_distractor

    class Data:
        n_items = 8
        train_popularity = np.array([5, 0, 3, 9, 1, 2, 0, 0])

    top = np.array([[3, 5, 1], [3, 5, 2], [3, 5, 0], [3, 4, 0], [2, 1, 0]])
    ranked = Ranked(np.arange(5), top, np.zeros(top.shape, np.float32),
                    test_item=np.array([3, 3, 3, 3, 7]), test_score=np.zeros(5, np.float32),
                    test_rank=np.array([1, 1, 1, 1, 50]))
    d = worst_distractor(Data(), ranked, lambda i: i)  # type: ignore[arg-type]
    assert d.thumb == 0 and d.n_lists == 3 and d.n_users == 5  # item 3 (4 lists) was always a hit
    assert d.train_popularity == 5 and d.popularity_rank == 2


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
    assert f"{metrics['fusion']['full']['ndcg@10']:.4f}" in section
    assert "<img" not in section and "data:image" not in section
    assert not build(p, readme=readme)["readme_changed"]  # same inputs, same README
    readme.write_text("# no markers here\n")
    with pytest.raises(ValueError, match="results:start"):
        build(p, readme=readme)


def test_report_is_deterministic_and_names_the_dataset(report, tmp_path):
    p = dict(report, out=tmp_path / "again")
    build(p)
    assert (p["out"] / "index.html").read_bytes() == (report["out"] / "index.html").read_bytes()
    html = (report["out"] / "index.html").read_text()
    assert f"{N_USERS} users" in html and "built-in synthetic" in html


def test_item_text_is_escaped():
    from pixrec.report.examples import Thumb
    from pixrec.report.html import figure

    html = figure(Thumb(7, "i7", "Café <b>&amp;</b>", "food", b"\xff\xd8"), "cap")
    assert "<b>" not in html and "Café &lt;b&gt;&amp;amp;&lt;/b&gt;" in html


def test_missing_and_corrupt_covers_become_labelled_placeholders(report):
    import io

    from pixrec.data.dataset import SplitData
    from pixrec.report.examples import Thumbnails

    data = SplitData.load(report["split"])
    thumbs = Thumbnails(report["raw"], data.items, 40)
    idx = {v: i for i, v in enumerate(data.items[S.ITEM_ID].to_list())}
    for item, note in (("i3", "no cover"), ("i5", "unreadable cover"), ("i9", None)):
        t = thumbs(idx[item])
        assert t.note == note
        with Image.open(io.BytesIO(t.jpeg)) as img:
            assert img.format == "JPEG" and max(img.size) == 40


def test_stage_cli_and_clear_errors(report, tmp_path):
    from typer.testing import CliRunner

    from stages.report import app

    params = tmp_path / "params.yaml"
    section = {**real_section("report"), "n_example_users": 2, "scan_users": 10, "seed": 3}
    params.write_text(yaml.safe_dump({"report": section}))
    args = [f"--{k}={report[k]}" for k in ("metrics", "split", "raw", "model", "embeddings", "eval")]
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
    params.write_text(yaml.safe_dump({"report": {**section, "n_examples": 2}}))
    result = CliRunner().invoke(app, [*args, f"--out={out}", f"--params={params}"])
    assert result.exit_code == 1 and "report.n_examples: unknown key" in result.output
