"""Per-stage wall time and peak memory, from the JSON lines every stage appends to
``$PIXREC_STAGE_LOG`` when it is set (see ``stages/_params.py``)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from pixrec.errors import InputError

CELL_FLAGS = ("--model", "--variant", "--image", "--text")  # a matrix cell's name is in its arguments


def stage_name(argv: list[str]) -> str:
    """``['/repo/stages/ablate.py', '--variant', 'no_image', ...]`` -> ``'ablate@no_image'``;
    ``['/repo/stages/train.py', '--model', 'two_tower', ...]`` -> ``'train@two_tower'``. The ablate
    stages name the headline model too (``--model``): a cell's name is its own axis only."""
    name = Path(argv[0]).stem.replace("_", "-") if argv else "?"
    flags = CELL_FLAGS if name == "train" else CELL_FLAGS[1:]
    cell = [argv[i + 1] for i, a in enumerate(argv[:-1]) if a in flags]
    return name + (f"@{'-'.join(cell)}" if cell else "")


def read_stage_log(path: Path) -> list[dict]:
    """One row per stage run, in order: stage, ok, wall_s, peak_rss_mib (process and its children)."""
    rows = []
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}: line {n} is not JSON ({exc.msg})") from None
        rows.append({"stage": stage_name(rec.get("argv", [])), "ok": rec.get("ok"),
                     "wall_s": rec.get("wall_s"),
                     "peak_rss_mib": max(rec.get("peak_rss_mib") or 0, rec.get("peak_child_rss_mib") or 0)})
    return rows


def summarise(rows: list[dict]) -> dict:
    """Totals over the stage rows: summed wall time, the largest peak."""
    return {"n_stages": len(rows), "total_wall_s": round(sum(r["wall_s"] or 0 for r in rows), 1),
            "max_peak_rss_mib": max((r["peak_rss_mib"] for r in rows), default=0)}


def run_repro(workspace: Path, log_path: Path, extra: list[str] | None = None) -> list[dict]:
    """``dvc repro --force`` in ``workspace`` with every stage logging to ``log_path``; its rows."""
    log_path = Path(log_path)
    log_path.unlink(missing_ok=True)
    env = {**os.environ, "PIXREC_STAGE_LOG": str(log_path.resolve())}
    proc = subprocess.run(["dvc", "repro", "--force", *(extra or [])], cwd=workspace, env=env)
    if proc.returncode:
        raise RuntimeError(f"dvc repro in {workspace} failed with exit code {proc.returncode}")
    return read_stage_log(log_path)
