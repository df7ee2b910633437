"""The ``pixrec`` command exposes every DVC stage, and its help is fast: no torch & co loaded."""

from __future__ import annotations

import importlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from stages.cli import STAGES, TOOLS

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "torchvision", "transformers", "sentence_transformers", "open_clip", "timm", "faiss",
         "dvclive", "matplotlib")
# runs the installed command's entry point, then reports which modules it had loaded
PROBE = """
import json, sys
from stages.cli import app
try:
    app(args=sys.argv[1:], prog_name="pixrec")
except SystemExit as exc:
    assert not exc.code, exc.code
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in HEAVY)))
"""


def test_every_dvc_stage_is_a_pixrec_subcommand():
    pipeline = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    for name, stage in pipeline["stages"].items():
        cmd = stage["cmd"]
        module = cmd.split()[2]  # python -m stages.<module> ...
        command = "train" if name.startswith("train-") else name  # one train stage per model
        assert STAGES[command] == module, f"dvc.yaml stage {name!r} runs {module}"
        assert hasattr(importlib.import_module(module), "app")


def _loaded(*args: str) -> tuple[str, list[str]]:
    proc = subprocess.run([sys.executable, "-c", f"HEAVY = {HEAVY!r}\n{PROBE}", *args], cwd=ROOT,
                          capture_output=True, text=True, check=True)
    *help_lines, modules = proc.stdout.rstrip("\n").split("\n")
    return "\n".join(help_lines), json.loads(modules)


def test_top_level_help_lists_every_stage_without_heavy_imports():
    exe = shutil.which("pixrec", path=str(Path(sys.executable).parent))
    proc = subprocess.run([exe, "--help"], capture_output=True, text=True, check=True)  # the installed script
    for name in [*STAGES, *TOOLS]:
        assert name in proc.stdout
    text, heavy = _loaded("--help")
    assert "split" in text and heavy == []


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_subcommand_help_runs_without_heavy_imports(stage):
    text, heavy = _loaded(stage, "--help")
    assert "--params" in text
    assert heavy == [], f"`pixrec {stage} --help` imported {heavy}"


@pytest.mark.parametrize("tool", sorted(TOOLS))
def test_workspace_commands_help_runs_without_heavy_imports(tool):
    text, heavy = _loaded(tool, "--help")
    assert "--workspace" in text
    assert heavy == [], f"`pixrec {tool} --help` imported {heavy}"
