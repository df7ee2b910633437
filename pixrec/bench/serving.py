"""Serving latency as a user meets it: ``pixrec recommend --user``, ``pixrec similar`` and ``pixrec
score-new`` for 3 new items, each a whole command in a fresh process against the workspace (interpreter
start, imports, reading, answering), timed ``runs`` times: median wall seconds and peak RSS.

The new items are 3 catalogue items with a cover, re-submitted under new ids with their text and
covers; the user is the first test user, the item the first warm one. score-new's first run may build
the text encoder's ONNX graph (``pixrec.encoders.onnx_cache``) when no earlier run left it: every run's
time is reported, so that shows.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

from pixrec import schema

NEW_ITEMS = 3


# ``python -m stages.cli`` (what the ``pixrec`` script runs), writing its own peak RSS at exit: the
# high-water mark of the process's memory since its exec (/proc VmHWM). Not the parent's getrusage of
# the child: Linux's ru_maxrss carries the forking process's size across exec (this one holds torch).
CLI = """
import atexit, os, runpy, sys

def peak():
    with open("/proc/self/status") as fh:
        kib = next((line.split()[1] for line in fh if line.startswith("VmHWM:")), "")
    with open(os.environ["PIXREC_BENCH_PEAK"], "w") as fh:
        fh.write(kib)

atexit.register(peak)
sys.argv = ["pixrec", *sys.argv[1:]]
runpy.run_module("stages.cli", run_name="__main__", alter_sys=True)
"""


def run_once(args: list[str], cwd: Path) -> tuple[float, float | None, int, str]:
    """(wall seconds, peak RSS MiB or None, exit code, last stderr line) of ``pixrec <args>`` run in a
    fresh process in ``cwd``."""
    with tempfile.TemporaryDirectory(prefix="pixrec-bench-run-") as tmp:
        peak_file = Path(tmp) / "peak"
        t = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", CLI, *args], cwd=cwd, capture_output=True, text=True,
                              env={**os.environ, "PIXREC_BENCH_PEAK": str(peak_file)})
        wall = time.perf_counter() - t
        kib = peak_file.read_text().strip() if peak_file.is_file() else ""
    tail = proc.stderr.strip().splitlines()
    return wall, int(kib) / 1024 if kib else None, proc.returncode, tail[-1] if tail else ""


def time_command(args: list[str], cwd: Path, runs: int) -> dict:
    """``pixrec <args>`` ``runs`` times: median and every run's seconds, the largest peak RSS."""
    walls, peaks = [], []
    for _ in range(runs):
        wall, peak, code, last = run_once(args, cwd)
        if code:
            raise RuntimeError(f"pixrec {' '.join(args)} failed in {cwd} (exit {code}): {last}")
        walls.append(wall)
        peaks.append(peak)
    known = [p for p in peaks if p is not None]
    return {"command": "pixrec " + " ".join(args), "seconds": round(statistics.median(walls), 3),
            "runs_s": [round(w, 3) for w in walls], "peak_rss_mib": round(max(known), 1) if known else None,
            "runs_peak_rss_mib": [None if p is None else round(p, 1) for p in peaks]}


def resubmitted(split: Path, raw: Path, out: Path, n: int = NEW_ITEMS) -> tuple[Path, Path]:
    """``n`` catalogue items with a cover as new items (``bench_<id>``): their item_info.csv rows and
    covers -> (``out/new.csv``, ``out/covers``)."""
    items = pl.read_parquet(split / schema.ITEMS_FILE).filter(pl.col(schema.COVER_PATH).is_not_null()).head(n)
    rows = (pl.read_csv(raw / schema.RAW_ITEMS, infer_schema=False)
            .filter(pl.col(schema.ITEM_ID).is_in(items[schema.ITEM_ID].implode()))
            .unique(schema.ITEM_ID, maintain_order=True))
    (out / "covers").mkdir(parents=True)
    for item_id, cover in zip(items[schema.ITEM_ID], items[schema.COVER_PATH], strict=True):
        shutil.copy(raw / cover, out / "covers" / f"bench_{item_id}{Path(cover).suffix}")
    rows.with_columns(("bench_" + pl.col(schema.ITEM_ID)).alias(schema.ITEM_ID)).write_csv(out / "new.csv")
    return out / "new.csv", out / "covers"


def serving(root: Path, split: Path, raw: Path, runs: int, log=print) -> dict:
    """The three commands against the workspace at ``root`` (its data/ and models/ reproduced)."""
    users = pl.read_parquet(split / schema.USERS_FILE)
    user = users.filter(pl.col(schema.IS_TEST_USER))[schema.USER_ID][0]
    items = pl.read_parquet(split / schema.ITEMS_FILE, columns=[schema.ITEM_ID, schema.IS_COLD])
    item = items.filter(~pl.col(schema.IS_COLD))[schema.ITEM_ID][0]
    out = {}
    with tempfile.TemporaryDirectory(prefix="pixrec-bench-serving-") as tmp:
        new_csv, covers = resubmitted(split, raw, Path(tmp))
        for name, args in (("recommend", ["recommend", "--user", user]),
                           ("similar", ["similar", "--item", item]),
                           ("score_new", ["score-new", "--items", str(new_csv), "--covers", str(covers)])):
            out[name] = time_command(args, root, runs)
            r = out[name]
            log(f"serving {name:<10} {r['seconds']:>7.2f} s (median of {runs}: {r['runs_s']})  peak MiB "
                f"{r['runs_peak_rss_mib']}  ({r['command'][:60]})")
    return out
