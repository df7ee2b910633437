"""Datasets as users hold them: text only (no covers), image only (no title, tag or description), no
counts. Each runs `dvc repro` end to end in a real DVC repo, through evaluate, ablate and report, with
the missing token masked for every item, counted, and said once; the ablation cell that would remove
it trains nothing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from dvc_repo import make_dvc_repo, run_dvc
from test_pipeline import STAGES
from test_pipeline import TINY as PIPELINE_TINY

from pixrec import schema
from pixrec.data.synthetic import SyntheticConfig, generate
from pixrec.evaluation.intervals import point_estimates

# the pipeline test's shrunk params, on a local copy (the pipeline's stages, all of them)
TINY = {**PIPELINE_TINY, "data.source": "local"}


def damaged_copy(root: Path, damage: str) -> Path:
    """The tiny synthetic dataset, then: covers emptied, text blanked, or counts blanked."""
    src = root / "src"
    generate(SyntheticConfig.from_preset("tiny", seed=1), src)
    shutil.rmtree(src / schema.RAW_TRUTH)
    items = pl.read_csv(src / schema.RAW_ITEMS, infer_schema=False)
    if damage == "text_only":
        shutil.rmtree(src / schema.RAW_COVERS)
        (src / schema.RAW_COVERS).mkdir()  # an empty covers/: DVC does not restore it from its cache
    elif damage == "image_only":
        text_columns = (schema.TITLE, schema.TAG, schema.DESCRIPTION)
        items = items.with_columns(pl.lit("").alias(c) for c in text_columns)
    else:
        items = items.with_columns(pl.lit("").alias(c) for c in schema.COUNT_COLUMNS)
    items.write_csv(src / schema.RAW_ITEMS)
    return src


def run_damaged(tmp_path: Path, damage: str, variant: str, token: str) -> tuple[Path, dict]:
    src = damaged_copy(tmp_path, damage)
    repo = make_dvc_repo(tmp_path, STAGES, {**TINY, "data.local_dir": str(src),
                                            "ablate.variants": ["full", variant]})
    run_dvc(repo, "repro")
    # a second run finds every dependency (an empty covers/ is no output of its own) and does nothing
    assert "Running stage" not in run_dvc(repo, "repro").stdout
    ablation = json.loads((repo / "metrics" / "ablation.json").read_text())
    evaluate = json.loads((repo / "metrics" / "evaluate.json").read_text())
    # the cell that removes only the absent token is the full model, and says why
    headline = point_estimates(evaluate["two_tower"]["full"])  # without its intervals and paired test
    assert ablation[variant]["full"] == ablation["full"]["full"] == headline
    assert ablation[variant]["train"]["reused"] and token in ablation[variant]["nothing_removed"]
    md = (repo / "reports" / "index.md").read_text()
    return repo, {"md": md, "html": (repo / "reports" / "index.html").read_text()}


@pytest.mark.slow
def test_text_only_dataset_runs_through_report(tmp_path):
    repo, report = run_damaged(tmp_path, "text_only", "no_image", "no images")
    mask = np.load(repo / "data/embeddings/image" / schema.EMB_MASK_FILE)
    meta = json.loads((repo / "data/embeddings/image" / schema.EMB_META_FILE).read_text())
    assert not mask.any() and meta["n_masked"] == mask.size == meta["masked"]["no cover file"]["count"]
    assert report["md"].count("No images in this dataset") == 1
    assert "nothing to remove" in report["md"]
    assert "No text in this dataset" not in report["md"]


@pytest.mark.slow
def test_image_only_dataset_runs_through_report(tmp_path):
    repo, report = run_damaged(tmp_path, "image_only", "no_text", "no text")
    meta = json.loads((repo / "data/embeddings/text" / schema.EMB_META_FILE).read_text())
    assert meta["n_usable"] == 0 and meta["n_masked"] == meta["n_items"]
    assert report["md"].count("No text in this dataset") == 1
    assert report["md"].count("No tags in this dataset") == 1
    assert np.load(repo / "data/embeddings/image" / schema.EMB_MASK_FILE).mean() > 0.9  # images kept


@pytest.mark.slow
def test_no_counts_dataset_runs_through_report(tmp_path):
    repo, report = run_damaged(tmp_path, "no_counts", "lifetime_counts", "no counts")
    split = json.loads((repo / "data/split" / schema.SPLIT_REPORT).read_text())
    n_items = split["summary"]["n_items"]
    assert all(split["counts"][f"items: {c} missing (imputed downstream)"] == n_items
               for c in schema.COUNT_COLUMNS)
    assert report["md"].count("No counts in this dataset") == 1
