"""The report as one self-contained HTML file: images are base64 data URIs, no external asset.

Cells carry ``data-row`` / ``data-col`` so tests (and readers' scripts) can find a number by name.
A small script sets ``data-broken-images`` on <body> after load: a headless browser check reads it.
"""

from __future__ import annotations

import base64
from html import escape

from pixrec.report.content import ReportContent, dataset_sentence, scalar
from pixrec.report.examples import Example, Examples, Thumb
from pixrec.report.tables import Table, fmt

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem auto;max-width:1240px;
  padding:0 1rem;color:#222;line-height:1.45}
h1{margin-bottom:.2rem} h2{border-bottom:1px solid #ddd;padding-bottom:.2rem;margin-top:2.2rem}
.banner{background:#fff6d6;border:1px solid #e8d48a;padding:.6rem .9rem;border-radius:6px}
table{border-collapse:collapse;margin:.8rem 0;font-variant-numeric:tabular-nums;font-size:.92rem}
caption{text-align:left;font-weight:600;padding-bottom:.3rem}
th,td{border:1px solid #d5d5d5;padding:.25rem .55rem} td{text-align:right}
thead th{background:#f2f2f2} tbody th{text-align:left;font-weight:500;white-space:nowrap}
tr[data-row=fusion] th,tr[data-row=full] th{font-weight:700}
.note{color:#555;font-size:.9rem;margin:.25rem 0}
.example{border:1px solid #e2e2e2;border-radius:8px;padding:.6rem .9rem;margin:1rem 0}
.strip{display:flex;flex-wrap:wrap;gap:.4rem;align-items:flex-start;margin:.4rem 0}
.strip .label{width:6rem;font-size:.8rem;color:#555;padding-top:1.8rem}
figure.item{margin:0;width:92px;box-sizing:border-box;text-align:center;font-size:.7rem;
  border:3px solid transparent;border-radius:6px;padding:2px}
figure.item img{width:80px;height:80px;object-fit:cover;border-radius:4px;background:#eee}
figure.item figcaption{overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
figure.heldout{border-color:#1f9d55;background:#eaf7ef}
figure.distractor{border-color:#c0392b;background:#fbeeee}
.badge{display:inline-block;background:#1f9d55;color:#fff;border-radius:3px;padding:0 .3rem;font-size:.7rem}
.pos{color:#777}
dl.kv{display:grid;grid-template-columns:max-content max-content;gap:.1rem 1rem;font-size:.9rem}
dl.kv dt{color:#555} dl.kv dd{margin:0;font-variant-numeric:tabular-nums}
footer{margin-top:3rem;color:#777;font-size:.8rem}
"""

SCRIPT = """
window.addEventListener("load", function () {
  var imgs = Array.prototype.slice.call(document.images);
  var broken = imgs.filter(function (i) { return !i.complete || i.naturalWidth === 0; });
  document.body.dataset.images = String(imgs.length);
  document.body.dataset.brokenImages = String(broken.length);
});
"""


def data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def short(text: str, n: int = 28) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def table_html(table: Table) -> str:
    head = "".join(f'<th data-col="{escape(k)}">{escape(h)}</th>' for k, h in table.columns)
    body = []
    for (key, label, _), cells in zip(table.rows, table.cells(), strict=True):
        tds = "".join(
            f'<td data-col="{escape(col)}">{f"<b>{text}</b>" if bold else text}</td>'
            for (col, _), (text, bold) in zip(table.columns, cells, strict=True)
        )
        body.append(f'<tr data-row="{escape(key)}"><th scope="row">{escape(label)}</th>{tds}</tr>')
    notes = "".join(f'<p class="note">{escape(n)}</p>' for n in table.notes)
    return (f'<table id="table-{escape(table.key)}" class="metrics" data-table="{escape(table.key)}">'
            f"<caption>{escape(table.title)}</caption><thead><tr><th></th>{head}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table>{notes}")


def figure(thumb: Thumb, caption: str, cls: str = "", heldout: bool = False, role: str = "") -> str:
    title = thumb.title or thumb.item_id
    tooltip = f"{thumb.item_id} · {thumb.tag} · {title}" + (f" ({thumb.note})" if thumb.note else "")
    mark = (' data-heldout="1"' if heldout else "") + (f' data-list="{role}"' if role else "")
    return (f'<figure class="item {cls}" data-item="{escape(thumb.item_id)}"{mark} title="{escape(tooltip)}">'
            f'<img src="{data_uri(thumb.jpeg, "image/jpeg")}" alt="{escape(title)}">'
            f"<figcaption>{caption}</figcaption></figure>")


def example_html(ex: Example, k: int, extra_class: str = "") -> str:
    history = "".join(figure(t, escape(short(t.title or t.item_id, 16)), role="history")
                      for t in ex.history)
    top = []
    for pos, (t, score) in enumerate(ex.top, start=1):
        held = t.item_idx == ex.heldout.item_idx
        cap = (f'<span class="pos">#{pos}</span> {escape(short(t.title or t.item_id, 12))}'
               f'<br>{fmt(score)}' + ('<br><span class="badge">held out</span>' if held else ""))
        top.append(figure(t, cap, "heldout" if held else "", heldout=held, role="top"))
    cold = " (cold item)" if ex.heldout_cold else ""
    status = (f"held-out item{cold} ranked <b>#{ex.heldout_rank:,}</b> "
              + ("— in the top-" + str(k) if ex.hit else f"— not in the top-{k}"))
    missing = ""
    if not ex.hit:
        name = escape(short(ex.heldout.title or ex.heldout.item_id, 12))
        cap = (f'<span class="pos">#{ex.heldout_rank:,}</span> {name}'
               f'<br>{fmt(ex.heldout_score)}<br><span class="badge">held out</span>')
        missing = (f'<div class="strip"><span class="label">held-out item</span>'
                   f'{figure(ex.heldout, cap, "heldout", heldout=True, role="heldout")}</div>')
    return (f'<div class="example {extra_class}" data-user="{escape(ex.user_id)}" '
            f'data-heldout-item="{escape(ex.heldout.item_id)}" data-heldout-rank="{ex.heldout_rank}">'
            f"<h3>User {escape(ex.user_id)}: {status}</h3>"
            '<div class="strip"><span class="label">recent history<br>(oldest → newest)</span>'
            f"{history}</div>"
            f'<div class="strip"><span class="label">fusion top-{k}<br>(score)</span>{"".join(top)}</div>'
            f"{missing}</div>")


def examples_html(exs: Examples) -> str:
    parts = [
        f'<p class="note">{len(exs.examples)} users drawn (seeded) from a sample of {exs.n_scanned:,} test '
        f"users, about half of them with the held-out item in the top-{exs.k}. History is the user's last "
        "training and validation interactions; the top list masks them, as full-ranking evaluation does. "
        "The held-out (test) item is framed in green.</p>",
        *(example_html(e, exs.k) for e in exs.examples),
    ]
    if exs.best is not None:
        parts += [f'<h2 id="best-case">Best case</h2><p class="note">The test interaction the model ranked '
                  f"best ({escape(exs.best_source)}; ties broken by the model's score of the item).</p>",
                  example_html(exs.best, exs.k, "best")]
    d = exs.distractor
    if d is not None:
        t = d.thumb
        parts.append(
            '<h2 id="worst-distractor">Worst distractor</h2>'
            f'<div class="strip" data-distractor="{escape(t.item_id)}">'
            f'{figure(t, escape(short(t.title or t.item_id, 16)), "distractor")}'
            f'<p class="note" style="max-width:40rem">Item <b>{escape(t.item_id)}</b> '
            f'({escape(t.tag or "no tag")}: '
            f"{escape(t.title or 'no title')}) is in the fusion top-{exs.k} lists of <b>{d.n_lists:,}</b> "
            f"sampled test users (of {d.n_users:,}) who never interacted with it. It has "
            f"{d.train_popularity:,} training interactions (popularity rank {d.popularity_rank:,} of "
            f"{d.n_items:,} items).</p></div>"
        )
    return "".join(parts)


def kv_html(data: dict) -> str:
    rows = [(k, v) for k, value in data.items() if (v := scalar(value)) is not None]
    items = "".join(f"<dt>{escape(str(k))}</dt><dd>{escape(v)}</dd>" for k, v in rows)
    return f'<dl class="kv">{items}</dl>'


def render_html(c: ReportContent) -> str:
    """The whole page; deterministic for the same inputs (no timestamps)."""
    banner_cls = "banner" if c.synthetic else "note"
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>pixrec results: {escape(c.dataset_label)}</title><style>{CSS}</style>",
        f"<script>{SCRIPT}</script></head><body>",
        "<h1>pixrec results</h1>",
        f'<p class="{banner_cls}" id="dataset">{escape(dataset_sentence(c))}</p>',
    ]
    if c.summary:
        out.append(f"<details><summary>Split summary</summary>{kv_html(c.summary)}</details>")
    out += [f'<p class="note missing">{escape(n)}</p>' for n in c.notes]
    out.append('<h2 id="results">Models</h2>')
    out += [table_html(t) for t in c.tables]
    if c.ablation is not None:
        out.append('<h2 id="ablation">Ablation</h2>')
        out.append(table_html(c.ablation))
    out.append('<h2 id="training">Training</h2>')
    if c.curve_png is not None:
        out.append(f'<img id="training-curve" src="{data_uri(c.curve_png, "image/png")}" '
                   'alt="training loss and validation NDCG@10 by epoch" style="max-width:100%">')
    if c.train_metrics:
        out.append(kv_html(c.train_metrics))
    if c.examples is not None:
        out.append('<h2 id="examples">Example recommendations</h2>')
        out.append(examples_html(c.examples))
    out.append("<footer>Generated by the pixrec report stage from: "
               + ", ".join(f"<code>{escape(s)}</code>" for s in c.sources) + ".</footer>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"
