"""`dvc plots show` renders without a network: the project's .dvc/config names plots/offline.html (Vega,
Vega-Lite and Vega-Embed inlined by `npm ci --prefix plots`), checked in a real headless Chromium whose
every host name fails to resolve. DVC's default page (scripts from a CDN) stays blank there."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from dvc_repo import BIN, ROOT, dvc_env, run_dvc
from test_report_browser import CHROMIUM, chromium

TEMPLATE = ROOT / "plots" / "offline.html"
OFFLINE = "--host-resolver-rules=MAP * ~NOTFOUND"  # no host name resolves: a CDN script never loads

pytestmark = [
    pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)"),
    pytest.mark.skipif(not TEMPLATE.is_file(), reason="`npm ci --prefix plots` builds plots/offline.html"),
]


@pytest.fixture(scope="module")
def plots_repo(tmp_path_factory) -> Path:
    """A git + DVC repo with the project's .dvc/config and plots/offline.html, and two plots."""
    repo = tmp_path_factory.mktemp("plots") / "repo"
    repo.mkdir()
    for cmd in (["git", "init", "-q"], [str(BIN / "dvc"), "init", "-q"]):
        subprocess.run(cmd, cwd=repo, env=dvc_env(), check=True, capture_output=True)
    shutil.copy(ROOT / ".dvc" / "config", repo / ".dvc" / "config")
    (repo / "plots").mkdir()
    shutil.copy(TEMPLATE, repo / "plots" / "offline.html")
    (repo / "metrics").mkdir()
    (repo / "metrics" / "curve.csv").write_text("step,loss\n" + "".join(f"{s},{1 / (s + 1):.4f}\n"
                                                                       for s in range(20)))
    (repo / "metrics" / "bars.csv").write_text("model,ndcg\nrandom,0.02\nitem_knn,0.17\ntwo_tower,0.21\n")
    plots = [{"Loss": {"template": "linear", "x": "step", "y": {"metrics/curve.csv": "loss"}}},
             {"NDCG": {"template": "bar_horizontal", "x": "ndcg", "y": {"metrics/bars.csv": "model"}}}]
    (repo / "dvc.yaml").write_text(yaml.safe_dump({"plots": plots}, sort_keys=False))
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
    assert dom.count('class="marks"') == 2  # one drawn Vega canvas per plot


def test_the_default_page_is_blank_offline(plots_repo, tmp_path):
    """What the template fixes: DVC's own page loads Vega from a CDN and draws nothing without it."""
    from dvc_render.html import PAGE_HTML

    (tmp_path / "default.html").write_text(PAGE_HTML)
    run_dvc(plots_repo, "plots", "show", "-o", "cdn_plots", "--html-template", str(tmp_path / "default.html"))
    page = (plots_repo / "cdn_plots" / "index.html").read_text()
    assert "cdn.jsdelivr" in page
    assert 'class="marks"' not in rendered(plots_repo, tmp_path, "cdn_plots")
