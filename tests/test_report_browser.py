"""The generated page in a real headless Chromium: every <img> decodes, the tables render, and a
screenshot is a real picture. Parsing HTML proves the numbers; only a browser proves the page works."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image
from test_report import build, make_report_inputs

CHROMIUM = next((p for p in (shutil.which("chromium"), shutil.which("chromium-browser"),
                             shutil.which("google-chrome")) if p), None)
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--hide-scrollbars", "--mute-audio"]

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (apt-get install chromium chromium-driver)"
)


def chromium(tmp: Path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp / f"profile-{len(list(tmp.glob('profile-*')))}"
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=90, check=False)


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> Path:
    p = make_report_inputs(tmp_path_factory.mktemp("browser"), seed=1)
    build(p)
    return p["out"] / "index.html"


def test_every_image_loads_and_tables_render(page, tmp_path):
    result = chromium(tmp_path, "--virtual-time-budget=5000", "--dump-dom", page.resolve().as_uri())
    dom = result.stdout
    assert result.returncode == 0 and "<body" in dom, result.stderr[-2000:]
    body = re.search(r"<body[^>]*>", dom).group(0)
    n_images = int(re.search(r'data-images="(\d+)"', body).group(1))
    assert re.search(r'data-broken-images="0"', body), body  # the page's own onload count
    # every thumbnail, the training curve: as many <img> as the source has, all decoded
    assert n_images == page.read_text().count("<img ") > 30
    for table in ("sampled", "full", "cold", "ablation"):
        assert f'id="table-{table}"' in dom
    assert 'data-heldout="1"' in dom


def test_screenshot_is_a_real_rendering(page, tmp_path):
    shot = tmp_path / "shot.png"
    result = chromium(tmp_path, f"--screenshot={shot}", "--window-size=1280,4000",
                      "--virtual-time-budget=5000", page.resolve().as_uri())
    assert result.returncode == 0 and shot.is_file(), result.stderr[-2000:]
    assert shot.stat().st_size > 50_000
    with Image.open(shot) as img:
        assert img.size == (1280, 4000)
        colours = img.convert("RGB").resize((320, 1000)).getcolors(maxcolors=1 << 16)
    assert colours is None or len(colours) > 200  # covers, curve and text, not a blank page
