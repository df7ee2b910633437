"""The recommend stage and ``pixrec recommend --user``: exact top-k unseen lists, the evaluator's own
top-10 lists for the same model and users, the Python API over them, one-line errors for bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp
import yaml
from dvc_repo import dvc_env, make_dvc_repo, run_dvc
from test_evaluator import Table

import pixrec
from pixrec import schema as S
from pixrec.errors import InputError
from pixrec.serve.recommendations import lists_frame
from pixrec.serve.topk import top_k_unseen

BIN = Path(sys.executable).parent
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
    assert frame.filter(pl.col(S.USER_ID) == "c").rows() == [("c", 1, "x", pytest.approx(0.2))]
    assert frame.height == 7 and frame[S.REC_RANK].to_list()[:3] == [1, 2, 3]


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
STAGES = ["headline", "download", "split", "embed-images", "embed-text", "negative-sample", "train-fusion",
          "train-two-tower", "tune", "evaluate", "recommend"]
TINY = {
    "data.preset": "tiny",
    "fusion": {"model": {"dim": 16, "heads": 2, "layers": 1, "mlp_hidden": 16},
               "train": {"epochs": 2, "patience": 2, "val_users": 50, "batch_size": 1024}},
    "two_tower": {"model": {"dim": 16, "negatives": 64},
                  "train": {"epochs": 4, "patience": 4, "val_users": 100}},
    "negatives": {"epochs": 2, "per_positive": 2},
    "baselines.names": ["random", "most_popular", "item_knn", "ease", "content_knn"],
    "eval.rerank.top_n": 0,
    "recommend": {"models": ["fusion", "item_knn", "most_popular", "content_knn"], "batch_users": 64},
}


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    repo = make_dvc_repo(tmp_path_factory.mktemp("recommend"), STAGES, TINY)
    run_dvc(repo, "repro")
    return repo


def pixrec_cli(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "pixrec"), *args], cwd=repo, env=dvc_env(), capture_output=True,
                          text=True, timeout=300)


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
    users = pl.read_parquet(repo / "data/split/users.parquet").select(S.USER_IDX, S.USER_ID)
    items = pl.read_parquet(repo / "data/split/items.parquet")[S.ITEM_ID].to_numpy()
    evaluated = pl.read_parquet(repo / "data/eval/top10.parquet")
    for model in manifest["models"]:
        ours = pl.read_parquet(repo / "data/recommendations" / f"{model}.parquet")
        theirs = evaluated.filter(pl.col(S.EVAL_MODEL) == model).join(users, on=S.USER_IDX)
        assert theirs.height > 100
        lists = ours.group_by(S.USER_ID, maintain_order=True).agg(pl.col(S.ITEM_ID))
        lists = dict(zip(lists[S.USER_ID], lists[S.ITEM_ID].to_list(), strict=True))
        for user_id, top in zip(theirs[S.USER_ID], theirs[S.EVAL_TOP_ITEMS].to_list(), strict=True):
            assert lists[user_id] == [items[i] for i in top if i >= 0], (model, user_id)


@pytest.mark.slow
def test_every_user_gets_k_unseen_items_best_first(repo):
    split = repo / "data/split"
    seen = pl.concat([pl.read_parquet(split / S.TRAIN_FILE), pl.read_parquet(split / S.VALID_FILE)])
    users = pl.read_parquet(split / S.USERS_FILE)
    ids = seen.join(users.select(S.USER_IDX, S.USER_ID), on=S.USER_IDX).join(
        pl.read_parquet(split / S.ITEMS_FILE).select(S.ITEM_IDX, S.ITEM_ID), on=S.ITEM_IDX)
    recs = pl.read_parquet(repo / "data/recommendations/two_tower.parquet")
    assert recs.columns == [S.USER_ID, S.REC_RANK, S.ITEM_ID, S.REC_SCORE]
    assert recs.height == 10 * users.height and recs[S.USER_ID].n_unique() == users.height
    assert recs.join(ids, on=[S.USER_ID, S.ITEM_ID]).height == 0  # nothing the user has seen
    per_user = recs.group_by(S.USER_ID).agg(pl.col(S.REC_RANK), pl.col(S.REC_SCORE).diff().max().alias("up"))
    assert all(r == list(range(1, 11)) for r in per_user[S.REC_RANK].to_list())
    assert per_user["up"].max() <= 0  # scores never rise down a list


@pytest.mark.slow
def test_command_and_api_show_history_and_the_stored_list(repo):
    user = pl.read_parquet(repo / "data/split/users.parquet")[S.USER_ID][3]
    stored = pl.read_parquet(repo / "data/recommendations/item_knn.parquet").filter(pl.col(S.USER_ID) == user)
    proc = pixrec_cli(repo, "recommend", "--user", user, "--model", "item_knn", "--k", "4", "--json")
    assert proc.returncode == 0, proc.stderr
    shown = json.loads(proc.stdout)
    assert shown["model"] == "item_knn" and [u["user_id"] for u in shown["users"]] == [user]
    recs = shown["users"][0]["recommendations"]
    assert [r["item_id"] for r in recs] == stored[S.ITEM_ID].to_list()[:4]
    assert all(r["title"] is not None or r["tag"] is not None for r in recs)
    history = shown["users"][0]["history"]
    times = [h["timestamp"] for h in history]
    assert 0 < len(history) <= 5 and times == sorted(times)
    # the same through the Python API, headline by default
    ws = pixrec.load(repo)
    assert ws.headline == "two_tower"
    head = ws.recommend([user], k=10)
    stored = pl.read_parquet(repo / "data/recommendations/two_tower.parquet").filter(pl.col(S.USER_ID) == user)
    assert head[S.ITEM_ID].to_list() == stored[S.ITEM_ID].to_list()
    assert {"title", "tag"} <= set(head.columns)
    text = pixrec_cli(repo, "recommend", "--user", user)
    assert text.returncode == 0 and "top 10 unseen by two_tower" in text.stdout
    assert stored[S.ITEM_ID][0] in text.stdout and history[-1]["item_id"] in text.stdout


@pytest.mark.slow
@pytest.mark.parametrize(("args", "says"), [
    (("--user", "u_nobody"), "unknown user id 'u_nobody'"),
    (("--user", "{user}", "--model", "ease"), "no recommendations by 'ease'"),
    (("--user", "{user}", "--k", "11"), "raise recommend.k"),
])
def test_bad_queries_are_one_line(repo, args, says):
    user = pl.read_parquet(repo / "data/split/users.parquet")[S.USER_ID][0]
    line = one_line_error(pixrec_cli(repo, "recommend", *(a.format(user=user) for a in args)))
    assert says in line


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
    assert "model 'two_tower' is not trained; run dvc repro train-two-tower" in line
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


def test_workspace_without_a_run_says_what_to_run(tmp_path):
    with pytest.raises(InputError, match="no split; run dvc repro"):
        pixrec.load(tmp_path).recommend(["u1"])
    proc = pixrec_cli(tmp_path, "recommend", "--user", "u1")
    assert "no split; run dvc repro" in one_line_error(proc)
