"""``pixrec status`` on a real DVC repo of the project's own download and split stages: what never ran,
what changed (params, code) and what lost its outputs, one line per reason, ending with the command."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from dvc_repo import ROOT, dvc_env, make_dvc_repo, run_dvc, set_params


def pixrec_status(repo: Path) -> subprocess.CompletedProcess[str]:
    """The installed command's code path: ``pixrec status`` through stages.cli, run in ``repo``."""
    return subprocess.run([sys.executable, "-c", "from stages.cli import app; app()", "status"], cwd=repo,
                          env={**dvc_env(), "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
                          timeout=300)


def lines(repo: Path) -> list[str]:
    proc = pixrec_status(repo)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()


@pytest.mark.slow
def test_status_names_what_never_ran_what_changed_and_the_command_to_run(tmp_path):
    repo = make_dvc_repo(tmp_path, ["download", "split"], {"data.preset": "tiny"})
    assert lines(repo) == ["never run: download, split -> dvc repro download split",
                           "run: dvc repro  (runs these and what depends on them)"]
    run_dvc(repo, "repro", "download")
    assert lines(repo)[0] == "never run: split -> dvc repro split"  # not its 14 deps 'modified'

    set_params(repo, {"data.seed": 99})
    assert lines(repo) == ["changed params: download (data) -> dvc repro download",
                           "never run: split -> dvc repro split",
                           "run: dvc repro  (runs these and what depends on them)"]
    subprocess.run(["git", "checkout", "params.yaml"], cwd=repo, check=True)
    with open(repo / "pixrec" / "data" / "synthetic.py", "a", encoding="utf-8") as f:
        f.write("# an edit\n")
    assert lines(repo)[0] == "changed deps: download (pixrec/data/synthetic.py) -> dvc repro download"
    subprocess.run(["git", "checkout", "pixrec"], cwd=repo, check=True)

    shutil.rmtree(repo / "data" / "raw")
    assert lines(repo)[0] == "outputs deleted: download (data/raw) -> dvc checkout download"
    run_dvc(repo, "repro")
    assert lines(repo) == ["Data and pipelines are up to date."]


def test_status_outside_a_dvc_repo_is_one_line(tmp_path):
    proc = pixrec_status(tmp_path)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: .: dvc status failed: you are not inside of a DVC repository")
    assert proc.stderr.count("\n") == 1
