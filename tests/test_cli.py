"""The ``pixrec`` command exposes every DVC stage."""

from __future__ import annotations

import importlib
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from stages.cli import STAGES

ROOT = Path(__file__).resolve().parents[1]


def test_every_dvc_stage_is_a_pixrec_subcommand():
    pipeline = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    for name, stage in pipeline["stages"].items():
        cmd = stage["cmd"]
        module = cmd.split()[2]  # python -m stages.<module> ...
        assert STAGES[name] == module, f"dvc.yaml stage {name!r} runs {module}"
        assert hasattr(importlib.import_module(module), "app")


def test_subcommand_help_runs_without_heavy_imports():
    exe = shutil.which("pixrec", path=str(Path(sys.executable).parent))
    proc = subprocess.run([exe, "split", "--help"], capture_output=True, text=True, check=True)
    assert "--raw" in proc.stdout and "--params" in proc.stdout
    proc = subprocess.run([exe, "--help"], capture_output=True, text=True, check=True)
    for name in STAGES:
        assert name in proc.stdout
