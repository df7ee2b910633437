"""The recommend stage and ``pixrec recommend --user``: exact top-k unseen lists, the evaluator's own
top-10 lists for the same model and users, the Python API over them, one-line errors for bad input."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp
import yaml
from dvc_repo import TINY_REPRO, dvc_env, make_dvc_repo, run_dvc
from test_evaluator import Table

import pixrec
from pixrec import schema
from pixrec.errors import InputError
from pixrec.serve.recommendations import lists_frame
from pixrec.serve.topk import top_k_unseen

INF = -np.inf


class ReadOnly(Table):
    """Scores handed out read-only (as a model may share its cache): top-k must not write into them."""

    def score_all(self, users):
        out = super().score_all(users)
        out.setflags(write=False)
        return out


def test_top_k_leaves_out_seen_and_unrankable_items():
    table = [[0.1, 0.9, 0.5, INF, 0.7],
             [0.3, 0.2, 0.1, 0.4, 0.0],
             [INF, INF, 0.2, INF, INF]]
    seen = sp.csr_matrix(np.array([[0, 1, 0, 0, 0], [0, 0, 0, 1, 1], [0, 0, 0, 0, 0]], dtype=np.float32))
    top = top_k_unseen(ReadOnly(table), np.array([0, 1, 2]), 3, seen, batch_users=2)
    # user 0: item 1 seen, item 3 unrankable -> 4 (0.7), 2 (0.5), 0 (0.1)
    # user 1: items 3, 4 seen -> 0, 1, 2; user 2: only item 2 is rankable -> one slot, two empty
    assert top.items.tolist() == [[4, 2, 0], [0, 1, 2], [2, -1, -1]]
    np.testing.assert_array_equal(top.scores[2], np.array([0.2, INF, INF], dtype=np.float32))
    assert top.n_short == 1
    frame = lists_frame(top, np.array(["a", "b", "c"], dtype=object), np.array(list("vwxyz"), dtype=object))
    assert frame.filter(pl.col(schema.USER_ID) == "c").rows() == [("c", 1, "x", pytest.approx(0.2))]
    assert frame.height == 7 and frame[schema.REC_RANK].to_list()[:3] == [1, 2, 3]


def test_blocks_of_any_size_give_the_lists_of_a_full_sort():
    rng = np.random.default_rng(0)
    table = rng.standard_normal((23, 40)).astype(np.float32)
    table[rng.random(table.shape) < 0.1] = INF  # unrankable cells
    seen = sp.random(23, 40, density=0.2, format="csr", random_state=1, dtype=np.float32)
    seen.data[:] = 1.0
    masked = np.where(seen.toarray() > 0, INF, table)
    expected = np.argsort(-masked, axis=1, kind="stable")[:, :7]  # no ties in normal draws
    expected = np.where(np.take_along_axis(masked, expected, axis=1) > INF, expected, -1)
    for batch in (1, 5, 23, 100):
        top = top_k_unseen(Table(table), np.arange(23), 7, seen, batch_users=batch)
        np.testing.assert_array_equal(top.items, expected)


# --- the stage in a real DVC repo ----------------------------------------------------------------------
STAGES = ["headline", "download", "split", "embed-images", "embed-text", "negative-sample", "train",
          "tune", "evaluate", "recommend"]
TINY = {
    **TINY_REPRO,
    "eval.rerank.top_n": 0,
    "recommend": {"models": ["fusion", "item_knn", "most_popular", "content_knn"], "batch_users": 64},
}


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    repo = make_dvc_repo(tmp_path_factory.mktemp("recommend"), STAGES, TINY)
    run_dvc(repo, "repro")
    return repo


# `pixrec <args>` as the console script runs it, from the repo (so its own copy of this checkout's
# code, not whatever the venv's script resolves to), noting the top-level modules loaded by the end
CLI = """
import atexit, json, os, runpy, sys
atexit.register(lambda: open(os.environ["PIXREC_TEST_MODULES"], "w").write(
    json.dumps(sorted({m.split(".")[0] for m in sys.modules}))))
sys.argv = ["pixrec", *sys.argv[1:]]
runpy.run_module("stages.cli", run_name="__main__", alter_sys=True)
"""
HEAVY = {"torch", "faiss", "scipy", "transformers", "sentence_transformers", "sklearn"}


def pixrec_cli(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The finished command; ``.heavy``: which of :data:`HEAVY` it had imported."""
    with tempfile.TemporaryDirectory() as tmp:
        modules = Path(tmp) / "modules.json"
        proc = subprocess.run([sys.executable, "-c", CLI, *args], cwd=repo, capture_output=True, text=True,
                              env={**dvc_env(), "PIXREC_TEST_MODULES": str(modules)}, timeout=300)
        proc.heavy = HEAVY & set(json.loads(modules.read_text())) if modules.is_file() else None
    return proc


def one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    return lines[0]


@pytest.mark.slow
def test_stage_lists_are_the_evaluators_top10(repo):
    """Same model, same users: the recommend stage's lists equal the evaluate stage's top-10 lists
    (data/eval/top10.parquet, the full protocol's), item for item and in order."""
    manifest = json.loads((repo / "data/recommendations/meta.json").read_text())
    assert manifest["headline"] == "two_tower" and manifest["k"] == 10
    assert set(manifest["models"]) == {"two_tower", "fusion", "item_knn", "most_popular", "content_knn"}
    users = pl.read_parquet(repo / "data/split/users.parquet").select(schema.USER_IDX, schema.USER_ID)
    items = pl.read_parquet(repo / "data/split/items.parquet")[schema.ITEM_ID].to_numpy()
    evaluated = pl.read_parquet(repo / "data/eval/top10.parquet")
    for model in manifest["models"]:
        ours = pl.read_parquet(repo / "data/recommendations" / f"{model}.parquet")
        theirs = evaluated.filter(pl.col(schema.EVAL_MODEL) == model).join(users, on=schema.USER_IDX)
        assert theirs.height > 100
        lists = ours.group_by(schema.USER_ID, maintain_order=True).agg(pl.col(schema.ITEM_ID))
        lists = dict(zip(lists[schema.USER_ID], lists[schema.ITEM_ID].to_list(), strict=True))
        for user_id, top in zip(theirs[schema.USER_ID], theirs[schema.EVAL_TOP_ITEMS].to_list(), strict=True):
            assert lists[user_id] == [items[i] for i in top if i >= 0], (model, user_id)


@pytest.mark.slow
def test_every_user_gets_k_unseen_items_best_first(repo):
    split = repo / "data/split"
    seen = pl.concat([pl.read_parquet(split / schema.TRAIN_FILE), pl.read_parquet(split / schema.VALID_FILE)])
    users = pl.read_parquet(split / schema.USERS_FILE)
    ids = seen.join(users.select(schema.USER_IDX, schema.USER_ID), on=schema.USER_IDX).join(
        pl.read_parquet(split / schema.ITEMS_FILE).select(schema.ITEM_IDX, schema.ITEM_ID),
        on=schema.ITEM_IDX)
    recs = pl.read_parquet(repo / "data/recommendations/two_tower.parquet")
    assert recs.columns == [schema.USER_ID, schema.REC_RANK, schema.ITEM_ID, schema.REC_SCORE]
    assert recs.height == 10 * users.height and recs[schema.USER_ID].n_unique() == users.height
    assert recs.join(ids, on=[schema.USER_ID, schema.ITEM_ID]).height == 0  # nothing the user has seen
    per_user = recs.group_by(schema.USER_ID).agg(pl.col(schema.REC_RANK),
                                                 pl.col(schema.REC_SCORE).diff().max().alias("up"))
    assert all(r == list(range(1, 11)) for r in per_user[schema.REC_RANK].to_list())
    assert per_user["up"].max() <= 0  # scores never rise down a list


@pytest.mark.slow
def test_command_and_api_show_history_and_the_stored_list(repo):
    user = pl.read_parquet(repo / "data/split/users.parquet")[schema.USER_ID][3]
    stored = (pl.read_parquet(repo / "data/recommendations/item_knn.parquet")
              .filter(pl.col(schema.USER_ID) == user))
    proc = pixrec_cli(repo, "recommend", "--user", user, "--model", "item_knn", "--k", "4", "--json")
    assert proc.returncode == 0, proc.stderr
    shown = json.loads(proc.stdout)
    assert shown["model"] == "item_knn" and [u["user_id"] for u in shown["users"]] == [user]
    recs = shown["users"][0]["recommendations"]
    assert [r["item_id"] for r in recs] == stored[schema.ITEM_ID].to_list()[:4]
    assert all(r["title"] is not None or r["tag"] is not None for r in recs)
    history = shown["users"][0]["history"]
    times = [h["timestamp"] for h in history]
    assert 0 < len(history) <= 5 and times == sorted(times)
    # the same through the Python API, headline by default
    ws = pixrec.load(repo)
    assert ws.headline == "two_tower"
    head = ws.recommend([user], k=10)
    stored = pl.read_parquet(repo / "data/recommendations/two_tower.parquet")
    stored = stored.filter(pl.col(schema.USER_ID) == user)
    assert head[schema.ITEM_ID].to_list() == stored[schema.ITEM_ID].to_list()
    assert {"title", "tag"} <= set(head.columns)
    text = pixrec_cli(repo, "recommend", "--user", user)
    assert text.returncode == 0 and "top 10 unseen by two_tower" in text.stdout
    assert stored[schema.ITEM_ID][0] in text.stdout and history[-1]["item_id"] in text.stdout


@pytest.mark.slow
@pytest.mark.parametrize(("args", "says"), [
    (("--user", "u_nobody"), "unknown user id 'u_nobody'"),
    (("--user", "{user}", "--model", "ease"), "no recommendations by 'ease'"),
    (("--user", "{user}", "--k", "11"), "raise recommend.k"),
    (("--user", "{user}", "--k", "-3"), "--k must be >= 1, got -3"),
    (("--user", "{user}", "--k", "0"), "--k must be >= 1, got 0"),
    (("--user", "{user}", "--history", "-1"), "--history must be >= 0, got -1"),
])
def test_bad_queries_are_one_line(repo, args, says):
    """Refused in one line, before anything heavy is imported."""
    user = pl.read_parquet(repo / "data/split/users.parquet")[schema.USER_ID][0]
    proc = pixrec_cli(repo, "recommend", *(a.format(user=user) for a in args))
    assert says in one_line_error(proc) and proc.heavy == set()


@pytest.mark.slow
def test_answers_from_stored_outputs_import_no_model_library(repo):
    """`recommend --user` answers from the stage's lists and `similar` from the item vectors the
    stage stored (torch, faiss, scipy never imported); a bad id or --k is refused just as light."""
    user = pl.read_parquet(repo / "data/split/users.parquet")[schema.USER_ID][0]
    items = pl.read_parquet(repo / "data/split/items.parquet")
    warm = items.filter(~pl.col(schema.IS_COLD))[schema.ITEM_ID][0]
    for args in (("recommend", "--user", user), ("similar", "--item", warm, "--json")):
        proc = pixrec_cli(repo, *args)
        assert proc.returncode == 0 and proc.heavy == set(), (args, proc.heavy, proc.stderr)
    for args, says in ((("similar", "--item", "i_nobody"), "unknown item id 'i_nobody'"),
                       (("similar", "--item", warm, "--k", "0"), "--k must be >= 1, got 0"),
                       (("score-new", "--items", "new.csv", "--k", "0"), "--k must be >= 1, got 0"),
                       (("score-new", "--items", "new.csv", "--users", "-1"), "--users must be >= 0")):
        proc = pixrec_cli(repo, *args)
        assert says in one_line_error(proc) and proc.heavy == set(), (args, proc.heavy)


@pytest.mark.slow
def test_stored_vectors_are_never_of_another_checkpoint(repo, tmp_path):
    """The stored item and user vectors are of the checkpoint they came from: once models/two_tower/
    holds another (retrained, recommend not rerun), `similar` and `score-new` ask the model itself,
    and answer the same, to the last digit, for the same model."""
    for part in ("data/split", "data/embeddings", "data/recommendations", "models"):
        shutil.copytree(repo / part, tmp_path / part)
    item = pl.read_parquet(repo / "data/split/items.parquet")[schema.ITEM_ID][3]
    fresh = pixrec_cli(repo, "similar", "--item", item, "--json")
    meta = tmp_path / "data/recommendations/meta.json"
    manifest = json.loads(meta.read_text())
    manifest["models"]["two_tower"]["vectors"]["checkpoint_sha256"] = "0" * 64  # another checkpoint
    meta.write_text(json.dumps(manifest))
    asked = pixrec_cli(repo, "similar", "--item", item, "--json", "--workspace", str(tmp_path))
    assert asked.returncode == 0 and "torch" in asked.heavy and "torch" not in fresh.heavy
    assert json.loads(asked.stdout) == json.loads(fresh.stdout)
    write_new_items(repo, tmp_path / "new", topics=[4, 9], per_topic=2)
    new = ("score-new", "--items", str(tmp_path / "new/new.csv"), "--covers", str(tmp_path / "new/covers"),
           "--users", "1000", "--json")
    stored, computed = pixrec_cli(repo, *new), pixrec_cli(repo, *new, "--workspace", str(tmp_path))
    assert stored.returncode == computed.returncode == 0, computed.stderr
    shown = json.loads(stored.stdout)
    assert sum(i["n_users"] for i in shown["items"]) > 0 and shown == json.loads(computed.stdout)


@pytest.mark.slow
def test_stage_refuses_untrained_and_untuned_models(repo, tmp_path):
    params = yaml.safe_load((repo / "params.yaml").read_text())
    stage = ["recommend", "--out", str(tmp_path / "recs"), "--params", str(tmp_path / "params.yaml")]
    for models, says in ((["user_knn"], "'user_knn' was not tuned"),
                         (["nope"], "unknown model 'nope'")):
        params["recommend"]["models"] = models
        (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
        assert says in one_line_error(pixrec_cli(repo, *stage))
    params["recommend"]["models"] = []
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    line = one_line_error(pixrec_cli(repo, *stage, "--models", str(tmp_path / "no_models")))
    assert "model 'two_tower' is not trained; run dvc repro train@two_tower" in line
    assert not (tmp_path / "recs").exists()  # nothing half-written


@pytest.mark.slow
def test_headline_table_leads_dvc_exp_show(repo):
    """metrics/headline.json: every evaluated model's NDCG@10 and interval on the three protocols, the
    headline model first; `dvc exp show` lists its columns before any other metric file's."""
    evaluate = json.loads((repo / "metrics/evaluate.json").read_text())
    table = json.loads((repo / "metrics/headline.json").read_text())["ndcg@10"]
    assert next(iter(table)) == "two_tower" and set(table) == set(evaluate) - {"intervals"}
    for model, row in table.items():
        for protocol in ("full", "cold", "sampled"):
            for end in ("", "_lo", "_hi"):
                assert row[protocol + end] == evaluate[model][protocol]["ndcg@10" + end]
        assert row["full_lo"] <= row["full"] <= row["full_hi"]
    header = run_dvc(repo, "exp", "show", "--csv").stdout.splitlines()[0].split(",")
    metrics = [c for c in header if c not in ("Experiment", "rev", "typ", "Created", "parent", "State",
                                              "Executor")]
    assert metrics[:9] == [f"ndcg@10.two_tower.{p}{e}" for p in ("full", "cold", "sampled")
                           for e in ("", "_lo", "_hi")]


def topic_of(repo: Path) -> dict[str, int]:
    """Each catalogue item's latent topic (the synthetic source's diagnostics; no stage reads them)."""
    truth = pl.read_parquet(repo / "data/raw" / schema.RAW_TRUTH / "items.parquet")
    return dict(zip(truth[schema.ITEM_ID], truth["topic"], strict=True))


def topic_precision(nearest: pl.DataFrame, topic: dict[str, int], of: dict[str, int]) -> float:
    """Mean share of each item's listed neighbours that share its topic (``of``: the item's topic)."""
    same = [topic[n] == of[i] for i, n in zip(nearest[schema.ITEM_ID], nearest["neighbour_id"], strict=True)]
    return float(np.mean(same))


def write_new_items(repo: Path, out: Path, topics: list[int], per_topic: int) -> dict[str, int]:
    """Items made after training, none in item_info.csv: for each topic, fresh titles and descriptions
    drawn from its vocabulary, its tag, and a cover of its visual style (another item's of the topic)
    -> ``out/new.csv`` and ``out/covers``; {new item_id: topic}."""
    truth = repo / "data/raw" / schema.RAW_TRUTH
    vocab = pl.read_parquet(truth / "topics.parquet")
    items = pl.read_parquet(repo / "data/split/items.parquet").filter(pl.col(schema.COVER_PATH).is_not_null())
    topic = topic_of(repo)
    rng = np.random.default_rng(5)
    rows, made = [], {}
    (out / "covers").mkdir(parents=True)
    for t in topics:
        words, tag = vocab["vocabulary"][t].to_list(), vocab["tag_name"][t]
        donors = [c for i, c in zip(items[schema.ITEM_ID], items[schema.COVER_PATH], strict=True)
                  if topic[i] == t]
        for j in range(per_topic):
            item_id = f"new_{t}_{j}"
            title, description = (" ".join(rng.choice(words, n)).capitalize() for n in (5, 15))
            rows.append({schema.ITEM_ID: item_id, **dict.fromkeys(schema.COUNT_COLUMNS, ""),
                         schema.TITLE: title, schema.TAG: tag, schema.DESCRIPTION: description + "."})
            shutil.copy(repo / "data/raw" / donors[j % len(donors)], out / "covers" / f"{item_id}.jpg")
            made[item_id] = t
    pl.DataFrame(rows).select(schema.ITEM_COLUMNS).write_csv(out / "new.csv")
    return made


@pytest.mark.slow
def test_new_items_land_near_their_topic_and_in_users_lists(repo, tmp_path):
    """Items created after training, content from one topic each, placed by the headline model's item
    tower: their nearest catalogue items are mostly of their topic (far above the topic's share); a
    user they are listed for would rank them inside the stored top-k; the command says the same."""
    made = write_new_items(repo, tmp_path, topics=[0, 3, 7, 10], per_topic=3)
    topic = topic_of(repo)
    ws = pixrec.load(repo)
    placed = ws.score_new_items(tmp_path / "new.csv", tmp_path / "covers", k=10, users=1000)
    assert placed.items[schema.ITEM_ID].to_list() == list(made)
    base = max(np.mean([topic[i] == t for i in topic]) for t in set(made.values()))
    assert topic_precision(placed.nearest, topic, made) > max(3 * base, 0.4)
    stored = pl.read_parquet(repo / "data/recommendations/two_tower.parquet")
    tenth = (stored.filter(pl.col(schema.REC_RANK) == 10)
             .select(schema.USER_ID, pl.col(schema.REC_SCORE).alias("tenth")))
    hits = placed.users.join(tenth, on=schema.USER_ID)
    assert hits.height == placed.users.height == placed.items["n_users"].sum()
    assert (hits[schema.REC_SCORE] >= hits["tenth"]).all()  # catalogue scores unmoved: it beat the 10th
    proc = pixrec_cli(repo, "score-new", "--items", str(tmp_path / "new.csv"), "--covers",
                      str(tmp_path / "covers"), "--json")
    assert proc.returncode == 0, proc.stderr
    shown = json.loads(proc.stdout)
    assert shown["model"] == "two_tower" and [i["item_id"] for i in shown["items"]] == list(made)
    first = shown["items"][0]
    assert [n["neighbour_id"] for n in first["nearest"]] == placed.nearest.filter(
        pl.col(schema.ITEM_ID) == first["item_id"])["neighbour_id"].to_list()


@pytest.mark.slow
def test_similar_works_for_cold_items(repo):
    """Cold items (no training interaction) have vectors from content: neighbours, best first, never
    the item itself, mostly of the item's own topic."""
    items = pl.read_parquet(repo / "data/split/items.parquet")
    cold = items.filter(pl.col(schema.IS_COLD))[schema.ITEM_ID].to_list()
    assert len(cold) >= 5
    topic = topic_of(repo)
    found = pixrec.load(repo).similar(cold, k=5)
    assert found.height == 5 * len(cold) and not (found[schema.ITEM_ID] == found["neighbour_id"]).any()
    base = max(np.mean([topic[i] == t for i in topic]) for t in set(topic.values()))
    assert topic_precision(found, topic, topic) > 2 * base
    proc = pixrec_cli(repo, "similar", "--item", cold[0], "--k", "5", "--json")
    assert proc.returncode == 0, proc.stderr
    shown = json.loads(proc.stdout)["items"][0]["similar"]
    cosines = [n["cosine"] for n in shown]
    assert [n["neighbour_id"] for n in shown] == found["neighbour_id"].to_list()[:5]
    assert cosines == sorted(cosines, reverse=True)


@pytest.mark.slow
def test_similar_says_which_items_are_cold(repo):
    """A cold item's neighbours come from its content: the text says so under the item, the JSON marks
    every item ``cold`` true or false."""
    items = pl.read_parquet(repo / "data/split/items.parquet")
    cold = items.filter(pl.col(schema.IS_COLD))[schema.ITEM_ID][0]
    warm = items.filter(~pl.col(schema.IS_COLD))[schema.ITEM_ID][0]
    text = pixrec_cli(repo, "similar", "--item", cold, "--item", warm, "--k", "3")
    assert text.returncode == 0, text.stderr
    says = f"{cold} is cold (no training interaction): its vector comes from its content"
    assert says in text.stdout and f"{warm} is cold" not in text.stdout
    shown = json.loads(pixrec_cli(repo, "similar", "--item", cold, "--item", warm, "--json").stdout)
    assert [(i["item_id"], i["cold"]) for i in shown["items"]] == [(cold, True), (warm, False)]


@pytest.mark.slow
@pytest.mark.parametrize(("args", "says"), [
    (("similar", "--item", "i_nobody"), "unknown item id 'i_nobody'"),
    (("similar", "--item", "{item}", "--model", "fusion"), "model 'fusion' has no item vectors"),
    (("similar", "--item", "{item}", "--model", "nope"), "unknown model 'nope'"),
    (("score-new", "--items", "{bad_csv}"), "lacks column(s) ['title']"),
    (("score-new", "--items", "{new_csv}", "--workspace", "{empty}"), "no split; run dvc repro"),
    (("score-new", "--items", "{new_csv}", "--k", "-1"), "--k must be >= 1, got -1"),
    (("score-new", "--items", "{new_csv}", "--users", "-2"), "--users must be >= 0, got -2"),
    (("similar", "--item", "{item}", "--k", "-5"), "--k must be >= 1, got -5"),
    (("similar", "--item", "{item}", "--workspace", "{untrained}"),
     "model 'two_tower' is not trained; run dvc repro train@two_tower"),
])
def test_bad_similar_and_score_new_input_is_one_line(repo, tmp_path, args, says):
    item = pl.read_parquet(repo / "data/split/items.parquet")[schema.ITEM_ID][0]
    write_new_items(repo, tmp_path, topics=[1], per_topic=1)
    pl.read_csv(tmp_path / "new.csv", infer_schema=False).drop(schema.TITLE).write_csv(tmp_path / "bad.csv")
    untrained = tmp_path / "untrained"  # split and lists there, no models/
    for part in ("data/split", "data/recommendations"):
        shutil.copytree(repo / part, untrained / part)
    (tmp_path / "empty").mkdir()
    values = {"item": item, "bad_csv": tmp_path / "bad.csv", "new_csv": tmp_path / "new.csv",
              "empty": tmp_path / "empty", "untrained": untrained}
    assert says in one_line_error(pixrec_cli(repo, *(a.format(**values) for a in args)))


def test_workspace_without_a_run_says_what_to_run(tmp_path):
    with pytest.raises(InputError, match="no split; run dvc repro"):
        pixrec.load(tmp_path).recommend(["u1"])
    proc = pixrec_cli(tmp_path, "recommend", "--user", "u1")
    assert "no split; run dvc repro" in one_line_error(proc)


@pytest.mark.slow
def test_score_new_masks_and_names_every_defect(repo, tmp_path):
    """A corrupt or missing cover is masked and noted naming the item, whether one cover of several is
    corrupt or all are; an item left with no usable content is named too. Never a refusal, never an
    option the command lacks, no progress bar; the text encoder is the one the embed-text stage left
    in the ONNX cache (sentence-transformers not imported)."""
    ids = list(write_new_items(repo, tmp_path, topics=[2], per_topic=3))
    covers, csv = tmp_path / "covers", tmp_path / "new.csv"
    (covers / f"{ids[0]}.jpg").write_bytes(b"not a jpeg")
    (covers / f"{ids[1]}.jpg").unlink()
    (covers / f"{ids[2]}.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    blank = pl.col(schema.ITEM_ID) == ids[2]  # no text, no tag: nothing left but a corrupt cover
    table = pl.read_csv(csv, infer_schema=False).with_columns(
        pl.when(blank).then(pl.lit("")).otherwise(pl.col(c)).alias(c)
        for c in (schema.TITLE, schema.TAG, schema.DESCRIPTION))
    table.write_csv(csv)
    proc = pixrec_cli(repo, "score-new", "--items", str(csv), "--covers", str(covers), "--json")
    assert proc.returncode == 0, proc.stderr
    notes = proc.stderr.strip().splitlines()
    assert all(n.startswith("note: ") for n in notes) and "--raw" not in proc.stderr, notes
    assert f"note: {ids[0]}, {ids[2]}: corrupt image (image masked)" in notes
    assert any(n.startswith(f"note: {ids[1]}: no cover file (no <item_id>.jpg in ") for n in notes)
    assert any(n.startswith(f"note: {ids[2]}: no usable content for this model") for n in notes)
    assert [i["item_id"] for i in json.loads(proc.stdout)["items"]] == ids
    assert not {"transformers", "sentence_transformers"} & proc.heavy, proc.heavy
    for item in ids[1:]:  # every cover corrupt: the same, item by item
        (covers / f"{item}.jpg").write_bytes(b"not a jpeg")
    proc = pixrec_cli(repo, "score-new", "--items", str(csv), "--covers", str(covers))
    assert proc.returncode == 0 and f"note: {', '.join(ids)}: corrupt image (image masked)" in proc.stderr


@pytest.mark.slow
def test_bench_times_the_serving_commands(repo, tmp_path):
    """``pixrec bench --part serving``: recommend --user, similar and score-new for 3 new items, each a
    whole command in a fresh process: median seconds and the command's own peak memory."""
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, "-m", "stages.bench", "--workspace", str(repo), "--out", str(out),
                           "--part", "serving", "--serving-runs", "2"],
                          cwd=repo, env=dvc_env(), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    serving = json.loads(out.read_text())["serving"]
    assert set(serving) == {"recommend", "similar", "score_new"}
    for name, row in serving.items():
        assert len(row["runs_s"]) == 2 and 0 < row["seconds"] <= max(row["runs_s"]), name
        assert 10 < row["peak_rss_mib"] < 4096, name  # the command's own, not the benchmark's
    assert serving["recommend"]["peak_rss_mib"] < serving["score_new"]["peak_rss_mib"]  # no torch
    assert serving["score_new"]["command"].startswith("pixrec score-new --items ")
