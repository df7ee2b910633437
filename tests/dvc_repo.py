"""Build a throwaway DVC repo from this project's own dvc.yaml / params.yaml, for end-to-end tests.

The repo gets copies of ``pixrec/`` and ``stages/`` (the stage deps must exist inside it), a
``params.yaml`` with overrides applied and a ``dvc.yaml`` holding only the requested stages.
"""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent  # the venv's bin: `python` and `dvc` in stage commands


# the tiny dataset and small, fast models: the overrides end-to-end tests share (each adds its own)
TINY_REPRO = {
    "data.preset": "tiny",
    "fusion": {"model": {"dim": 16, "heads": 2, "layers": 1, "mlp_hidden": 16},
               "train": {"epochs": 2, "patience": 2, "val_users": 50, "batch_size": 1024}},
    "two_tower": {"model": {"dim": 16, "negatives": 64},
                  "train": {"epochs": 12, "patience": 4, "val_users": 100, "ema": 0.5}},
    "negatives": {"epochs": 2, "per_positive": 2},
    "baselines.names": ["random", "most_popular", "item_knn", "ease", "content_knn"],
}


def dvc_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(DVC_NO_ANALYTICS="1", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}", GIT_TERMINAL_PROMPT="0",
               GIT_AUTHOR_NAME="pixrec tests", GIT_AUTHOR_EMAIL="tests@pixrec.invalid",
               GIT_COMMITTER_NAME="pixrec tests", GIT_COMMITTER_EMAIL="tests@pixrec.invalid")
    env.pop("PYTHONPATH", None)
    return env


def _apply(params: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Overrides by dotted key (``{"data.preset": "tiny"}``) or nested mapping (merged key by key)."""
    out = copy.deepcopy(params)
    for key, value in overrides.items():
        *parents, last = key.split(".")
        node = out
        for part in parents:
            node = node.setdefault(part, {})
        if isinstance(value, Mapping) and isinstance(node.get(last), dict):
            node[last] = _apply(node[last], value)
        else:
            node[last] = copy.deepcopy(value)
    return out


def make_dvc_repo(tmp_path: Path, stages: list[str], params_overrides: dict[str, Any]) -> Path:
    """A git + DVC repo under ``tmp_path`` running the project's real ``stages`` with overridden params."""
    repo = Path(tmp_path) / "repo"
    repo.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for pkg in ("pixrec", "stages"):
        shutil.copytree(ROOT / pkg, repo / pkg, ignore=ignore)
    params = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    (repo / "params.yaml").write_text(yaml.safe_dump(_apply(params, params_overrides), sort_keys=False))
    pipeline = yaml.safe_load((ROOT / "dvc.yaml").read_text(encoding="utf-8"))
    unknown = sorted(set(stages) - set(pipeline["stages"]))
    if unknown:
        raise KeyError(f"stages {unknown} are not in dvc.yaml; it has {sorted(pipeline['stages'])}")
    chosen = {"stages": {name: pipeline["stages"][name] for name in stages}}
    (repo / "dvc.yaml").write_text(yaml.safe_dump(chosen, sort_keys=False))
    for cmd in (["git", "init", "-q"], [str(BIN / "dvc"), "init", "-q"], ["git", "add", "-A"],
                ["git", "commit", "-qm", "pipeline under test"]):
        subprocess.run(cmd, cwd=repo, env=dvc_env(), check=True, capture_output=True)
    return repo


def run_dvc(repo: Path, *args: str, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``dvc <args>`` in ``repo`` (``env`` added to the test environment); raises with DVC's output
    on failure."""
    proc = subprocess.run([str(BIN / "dvc"), *args], cwd=repo, env={**dvc_env(), **(env or {})},
                          capture_output=True, text=True)
    if proc.returncode:
        raise AssertionError(f"dvc {' '.join(args)} failed ({proc.returncode}):\n"
                             f"{proc.stdout}\n{proc.stderr}")
    return proc


def set_params(repo: Path, overrides: dict[str, Any]) -> None:
    """Edit the repo's params.yaml in place (as a user would before ``dvc repro``)."""
    path = Path(repo) / "params.yaml"
    path.write_text(yaml.safe_dump(_apply(yaml.safe_load(path.read_text()), overrides), sort_keys=False))
