"""params.yaml is laid out as DVC writes it back, so `dvc exp run -S key=value` changes that one line.

DVC 3 applies ``-S`` through ``dvc.utils.hydra.apply_overrides``: it loads the file with ruamel's
round-trip loader, applies the overrides to a plain copy, merges the copy back (every list and scalar is
replaced by a plain value: flow lists come out one item per line, ``null`` comes out empty, comments
after a list's last item are dropped) and dumps with ruamel's defaults (80 columns for flow mappings).
A file already in that form comes back byte for byte, but for the value that was set.
"""

from __future__ import annotations

import difflib
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from dvc_repo import BIN, ROOT, dvc_env, run_dvc

PARAMS = ROOT / "params.yaml"


def set_params(tmp_path: Path, *overrides: str) -> tuple[list[str], list[str]]:
    """A copy of params.yaml through DVC's own ``-S`` code path: (lines before, lines after)."""
    from dvc.utils.hydra import apply_overrides

    path = tmp_path / "params.yaml"
    shutil.copy(PARAMS, path)
    before = path.read_text(encoding="utf-8").splitlines()
    apply_overrides(path, list(overrides))
    return before, path.read_text(encoding="utf-8").splitlines()


def changed(before: list[str], after: list[str]) -> tuple[list[str], list[str]]:
    """The lines removed and the lines added."""
    diff = list(difflib.unified_diff(before, after, lineterm="", n=0))[2:]
    return ([d[1:] for d in diff if d.startswith("-")], [d[1:] for d in diff if d.startswith("+")])


def value_and_comment(line: str) -> tuple[str, str]:
    head, _, comment = line.partition(" #")
    return head.rstrip(), comment.strip()


def test_dvc_round_trip_is_byte_identical(tmp_path):
    """DVC's load-and-dump of params.yaml (ruamel round-trip, DVC's dumper settings) changes nothing."""
    from dvc.utils.serialize import modify_yaml

    path = tmp_path / "params.yaml"
    shutil.copy(PARAMS, path)
    with modify_yaml(path):
        pass
    assert path.read_text(encoding="utf-8") == PARAMS.read_text(encoding="utf-8")


@pytest.mark.parametrize(("override", "expected"), [
    ("recommend.k=20", "  k: 20"),
    ("two_tower.train.lr=3e-4", "    lr: 0.0003"),  # README's example
    ("data.local_dir=/data/PixelRec", "  local_dir: /data/PixelRec"),  # a null with a comment
    ("baselines.knobs.item_knn.k=[50,100]", "    item_knn: {k: [50, 100]}"),  # inside a flow mapping
])
def test_set_param_rewrites_only_its_own_line(tmp_path, override, expected):
    before, after = set_params(tmp_path, override)
    removed, added = changed(before, after)
    assert len(removed) == len(added) == 1, "\n".join(difflib.unified_diff(before, after, lineterm=""))
    assert value_and_comment(added[0])[0] == expected
    assert value_and_comment(added[0])[1] == value_and_comment(removed[0])[1]  # its comment stays


def test_setting_a_value_to_itself_changes_nothing(tmp_path):
    k = yaml.safe_load(PARAMS.read_text(encoding="utf-8"))["recommend"]["k"]
    before, after = set_params(tmp_path, f"recommend.k={k}")
    assert after == before


@pytest.mark.slow
def test_exp_run_set_param_changes_one_line(tmp_path):
    """As a user sees it: a real `dvc exp run -S recommend.k=20` in a git + DVC repo holding the
    project's params.yaml, then `git diff params.yaml` is one line; `dvc params diff` shows only what
    changed (nothing before the experiment), `--all` every param."""
    repo = tmp_path / "repo"
    repo.mkdir()
    shutil.copy(PARAMS, repo / "params.yaml")
    (repo / "dvc.yaml").write_text("stages:\n  show-k:\n    cmd: echo ${recommend.k} > k.txt\n"
                                   "    params:\n      - recommend.k\n    outs:\n      - k.txt\n")
    env = dvc_env()
    for cmd in (["git", "init", "-q"], [str(BIN / "dvc"), "init", "-q"], ["git", "add", "-A"],
                ["git", "commit", "-qm", "params"]):
        subprocess.run(cmd, cwd=repo, env=env, check=True, capture_output=True)
    assert run_dvc(repo, "params", "diff").stdout.strip() == ""
    assert "recommend.k" in run_dvc(repo, "params", "diff", "--all").stdout

    run_dvc(repo, "exp", "run", "-S", "recommend.k=20")
    assert (repo / "k.txt").read_text().strip() == "20"
    numstat = subprocess.run(["git", "diff", "--numstat", "params.yaml"], cwd=repo, env=env, check=True,
                             capture_output=True, text=True).stdout.split()
    assert numstat == ["1", "1", "params.yaml"], subprocess.run(
        ["git", "diff", "params.yaml"], cwd=repo, capture_output=True, text=True).stdout
    removed, added = changed(PARAMS.read_text(encoding="utf-8").splitlines(),
                             (repo / "params.yaml").read_text(encoding="utf-8").splitlines())
    assert added == ["  k: 20"] and removed[0].startswith("  k: ")
    assert "recommend.k" in run_dvc(repo, "params", "diff").stdout
