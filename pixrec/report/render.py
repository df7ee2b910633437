"""The report's two renderings, from jinja2 templates (``templates/``, shipped as package data):
one self-contained HTML page (images as data URIs, autoescaped) and Markdown (``index.md`` and the
results page, docs/results.md). Formatting of numbers happens before (``tables.fmt``), so both say the same.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from functools import cache

import jinja2

from pixrec.report.content import ReportContent
from pixrec.report.examples import Thumb

CURVE_BAR_PX, CURVE_HEIGHT_PX = 7, 26  # the tuning table's inline validation-curve bars


def data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def short(text: str, n: int = 28) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def md_cell(text: object) -> str:
    """Markdown-table-safe text: no pipes, no line breaks."""
    return str(text).replace("|", "\\|").replace("\n", " ").strip()


@cache
def environment() -> jinja2.Environment:
    """Templates from the package; HTML autoescaped (item titles are user data), Markdown not."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("pixrec.report", "templates"),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",), default_for_string=False),
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
    )
    env.filters.update(data_uri=data_uri, short=short, md=md_cell, count=lambda n: f"{n:,}")
    env.globals.update(zip=zip, bar_px=CURVE_BAR_PX, bar_height=CURVE_HEIGHT_PX)
    return env


def render_html(content: ReportContent) -> str:
    """The whole page; deterministic for the same inputs (no timestamps)."""
    return environment().get_template("report.html.j2").render(c=content)


def render_markdown(content: ReportContent, img: Callable[[Thumb], str]) -> str:
    """``index.md``; ``img`` maps a thumbnail to its path relative to the Markdown file."""
    return environment().get_template("report.md.j2").render(c=content, img=img)


def render_results(content: ReportContent, heading: str = "###") -> str:
    """Dataset sentence, notes and every table: what the results page (docs/results.md) holds."""
    return environment().get_template("results.md.j2").render(c=content, heading=heading, models_heading="")
