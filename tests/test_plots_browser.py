"""`dvc plots show` renders without a network, and draws what the project's plot definitions promise: the
project's .dvc/config plus npm's postinstall (plots/build-template.js) point DVC at plots/offline.html
(Vega, Vega-Lite and Vega-Embed inlined by `npm ci --prefix plots`), checked in a real headless Chromium
whose every host name fails to resolve. DVC's default page (scripts from a CDN) stays blank there."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import polars as pl
import pytest
from dvc_repo import ROOT, run_dvc
from PIL import Image
from test_plots import HEADLINE, NODE, NODE_MODULES, PROTOCOLS, make_plots_repo
from test_report_browser import CHROMIUM, chromium

TEMPLATE = ROOT / "plots" / "offline.html"
OFFLINE = "--host-resolver-rules=MAP * ~NOTFOUND"  # no host name resolves: a CDN script never loads

pytestmark = [
    pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)"),
    pytest.mark.skipif(NODE is None or not TEMPLATE.is_file() or not NODE_MODULES.is_dir(),
                       reason="`npm ci --prefix plots` builds plots/offline.html"),
]


@pytest.fixture(scope="module")
def plots_repo(tmp_path_factory) -> Path:
    """The project's plots (tests/test_plots.py) after npm's postinstall: plots/offline.html built and
    named in .dvc/config.local."""
    repo = make_plots_repo(tmp_path_factory.mktemp("plots"))
    shutil.copy(ROOT / "plots" / "build-template.js", repo / "plots" / "build-template.js")
    os.symlink(NODE_MODULES, repo / "plots" / "node_modules")
    subprocess.run([NODE, "plots/build-template.js"], cwd=repo, check=True, capture_output=True)
    return repo


def rendered(repo: Path, tmp: Path, out: str) -> str:
    page = repo / out / "index.html"
    result = chromium(tmp, OFFLINE, "--virtual-time-budget=5000", "--dump-dom", page.resolve().as_uri())
    assert result.returncode == 0 and "<body" in result.stdout, result.stderr[-2000:]
    return result.stdout


def test_plots_render_offline_with_the_project_template(plots_repo, tmp_path):
    run_dvc(plots_repo, "plots", "show", "-o", "offline_plots")
    page = (plots_repo / "offline_plots" / "index.html").read_text()
    assert "cdn.jsdelivr" not in page and "<script src=" not in page
    dom = rendered(plots_repo, tmp_path, "offline_plots")
    assert dom.count('class="marks"') == 4  # one drawn Vega view per plot


def test_panels_intervals_and_axes(plots_repo, tmp_path):
    """What the templates draw (their SVG's ARIA labels): a panel per model for each training curve and a
    panel per protocol for each bar chart, titles that are not paths, every NDCG axis within [0, 1], an
    interval line per (model, protocol) and the headline marked."""
    run_dvc(plots_repo, "plots", "show", "-o", "drawn")
    dom = rendered(plots_repo, tmp_path, "drawn")
    titles = re.findall(r"aria-label=\"Title text '([^']*)'\"", dom)
    for model in ("fusion", "two_tower"):
        assert titles.count(model) == 2  # loss and validation NDCG@10
    for protocol in PROTOCOLS:
        assert titles.count(f"{protocol} protocol") == 2  # test NDCG@10 and the ablation
    plot_titles = [t for t in titles if len(t) > 30]
    assert len(plot_titles) == 4 and not any("/" in t or ".csv" in t for t in plot_titles), plot_titles
    ndcg_axes = re.findall(r"aria-label=\"[XY]-axis titled 'NDCG@10' for a linear scale with values from "
                           r"([-\d.]+) to ([-\d.]+)\"", dom)
    assert len(ndcg_axes) == 2 + 2 * len(PROTOCOLS)  # validation curves, test bars, ablation bars
    assert all(0 <= float(lo) and float(hi) <= 1 for lo, hi in ndcg_axes), ndcg_axes
    intervals = re.findall(r'<line aria-label="lo: [^"]*hi: [^"]*" role="graphics-symbol" '
                           r'aria-roledescription="rule mark"', dom)
    rows = pl.read_csv(plots_repo / "metrics" / "evaluate_plot.csv")
    assert len(intervals) == rows.height
    assert f"{HEADLINE} (headline)" in dom


def test_screenshot_is_a_real_rendering(plots_repo, tmp_path):
    run_dvc(plots_repo, "plots", "show", "-o", "shot_plots")
    shot = tmp_path / "plots.png"
    page = (plots_repo / "shot_plots" / "index.html").resolve().as_uri()
    result = chromium(tmp_path, OFFLINE, f"--screenshot={shot}", "--window-size=1400,1800",
                      "--virtual-time-budget=5000", page)
    assert result.returncode == 0 and shot.is_file(), result.stderr[-2000:]
    with Image.open(shot) as img:
        assert img.size == (1400, 1800)
        assert len(img.convert("RGB").getcolors(1 << 16) or []) > 20  # drawn, not a blank page


def test_the_default_page_is_blank_offline(plots_repo, tmp_path):
    """What the template fixes: DVC's own page loads Vega from a CDN and draws nothing without it."""
    from dvc_render.html import PAGE_HTML

    (tmp_path / "default.html").write_text(PAGE_HTML)
    run_dvc(plots_repo, "plots", "show", "-o", "cdn_plots", "--html-template", str(tmp_path / "default.html"))
    page = (plots_repo / "cdn_plots" / "index.html").read_text()
    assert "cdn.jsdelivr" in page
    assert 'class="marks"' not in rendered(plots_repo, tmp_path, "cdn_plots")
