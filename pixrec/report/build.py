"""Assemble the report from the pipeline's outputs and write ``index.html`` + ``index.md`` atomically."""

from __future__ import annotations

import re
from pathlib import Path

from pixrec.config import ConfigError, section
from pixrec.data.dataset import SplitData
from pixrec.data.modalities import empty_modalities
from pixrec.errors import InputError
from pixrec.io import atomic_dir
from pixrec.report import inputs
from pixrec.report.content import ReportContent
from pixrec.report.curve import training_curve_png
from pixrec.report.examples import Examples, Thumb, build_examples
from pixrec.report.html import render_html
from pixrec.report.markdown import render_markdown, tables_md
from pixrec.report.readme import replace_section, rewrite_readme
from pixrec.report.tables import ablation_table, model_tables, two_stage_table

HTML_FILE, MD_FILE, IMG_DIR, CURVE_FILE = "index.html", "index.md", "img", "training_curve.png"


@section
class ReportConfig:
    """The ``report`` section of params.yaml: how many examples, and the seed that picks them."""

    n_example_users: int
    history_len: int
    top_k: int
    scan_users: int  # seeded test users whose top-k lists are scanned (examples, distractor)
    thumb_px: int
    seed: int

    def __post_init__(self) -> None:
        for name in ("n_example_users", "history_len", "top_k", "scan_users"):
            if getattr(self, name) < 1:
                raise ConfigError(f"report.{name} must be >= 1, got {getattr(self, name)}")
        if not 16 <= self.thumb_px <= 512:
            raise ConfigError(f"report.thumb_px must be in [16, 512], got {self.thumb_px}")


def _img_name(thumb: Thumb) -> str:
    safe = re.sub(r"[^A-Za-z0-9_-]", "_", thumb.item_id)[:40]
    return f"{IMG_DIR}/{thumb.item_idx}_{safe}.jpg"


def collect(
    metrics_dir: Path, split_dir: Path, raw_dir: Path, model_dir: Path, embeddings_dir: Path,
    eval_dir: Path, config: ReportConfig, dataset_label: str | None = None,
) -> ReportContent:
    """Read every input and compute the examples: all the numbers the report shows."""
    from pixrec.models.fusion import load_recommender

    metrics_dir = Path(metrics_dir)
    evaluate = inputs.read_json(metrics_dir / inputs.EVALUATE_JSON, "evaluate")
    ablation = inputs.read_json(metrics_dir / inputs.ABLATION_JSON, "ablate", required=False)
    train = inputs.read_json(metrics_dir / inputs.TRAIN_JSON, "train", required=False)
    sweep = inputs.read_json(metrics_dir / inputs.TWO_STAGE_JSON, "two-stage", required=False)
    notes = []
    if ablation is None:
        notes.append(f"{metrics_dir / inputs.ABLATION_JSON} is missing: no ablation table "
                     "(run the ablate stage).")
    if train is None:
        notes.append(f"{metrics_dir / inputs.TRAIN_JSON} is missing: no training summary "
                     "(run the train stage).")

    data = SplitData.load(split_dir)
    absent = empty_modalities(split_dir, embeddings_dir).values()  # said once, here
    notes += [f"{what[:1].upper()}{what[1:]}." for what in absent]
    label, synthetic = inputs.dataset_label(raw_dir)
    if dataset_label:
        label = dataset_label
    history = inputs.training_history(model_dir)
    best_epoch = (train or {}).get("best_epoch")
    curve = training_curve_png(history, best_epoch if isinstance(best_epoch, int) else None)
    if curve is None:
        notes.append(f"{Path(model_dir) / 'meta.json'} has no training history: no training curve.")

    per_user = inputs.read_per_user(eval_dir)
    if per_user is None:
        notes.append(f"{eval_dir}: no per-user results; the best case is taken from the sampled users only.")
    rec = load_recommender(model_dir, data, embeddings_dir)
    examples: Examples = build_examples(
        rec, data, raw_dir, per_user, n_examples=config.n_example_users, history_len=config.history_len,
        k=config.top_k, scan_users=config.scan_users, thumb_px=config.thumb_px, seed=config.seed,
    )
    sources = [str(metrics_dir / f) for f in (inputs.EVALUATE_JSON, inputs.ABLATION_JSON, inputs.TRAIN_JSON,
                                              inputs.TWO_STAGE_JSON)]
    sources += [str(p) for p in (split_dir, raw_dir, model_dir, embeddings_dir, eval_dir)]
    return ReportContent(
        dataset_label=label, synthetic=synthetic, summary=dict(data.report.get("summary", {})),
        tables=model_tables(evaluate) + [t for t in [two_stage_table(sweep or {})] if t is not None],
        ablation=ablation_table(ablation) if ablation else None,
        train_metrics=dict(train or {}), curve_png=curve, examples=examples, sources=sources, notes=notes,
    )


def write_report(content: ReportContent, out_dir: Path, readme: Path | None = None) -> dict:
    """``out_dir/index.html`` (self-contained), ``index.md`` + ``img/``; optionally the README section."""
    thumbs = content.examples.thumbs if content.examples is not None else []
    with atomic_dir(Path(out_dir)) as tmp:
        (tmp / HTML_FILE).write_text(render_html(content), encoding="utf-8")
        (tmp / IMG_DIR).mkdir()
        for t in thumbs:
            (tmp / _img_name(t)).write_bytes(t.jpeg)
        curve = None
        if content.curve_png is not None:
            (tmp / CURVE_FILE).write_bytes(content.curve_png)
            curve = CURVE_FILE
        (tmp / MD_FILE).write_text(render_markdown(content, _img_name, curve), encoding="utf-8")
    changed = rewrite_readme(readme, tables_md(content, "####")) if readme is not None else False
    return {"html": str(Path(out_dir) / HTML_FILE), "markdown": str(Path(out_dir) / MD_FILE),
            "thumbnails": len(thumbs), "tables": len(content.tables) + (content.ablation is not None),
            "readme_changed": changed}


def build_report(
    metrics_dir: Path, split_dir: Path, raw_dir: Path, model_dir: Path, embeddings_dir: Path,
    eval_dir: Path, out_dir: Path, config: ReportConfig, readme: Path | None = None,
    dataset_label: str | None = None,
) -> dict:
    """Read the pipeline's outputs, write the report; returns a one-line summary for the stage."""
    if readme is not None:  # a README without markers fails now, not after the scoring work
        if not Path(readme).is_file():
            raise InputError(f"{readme}: no such README to rewrite")
        replace_section(Path(readme).read_text(encoding="utf-8"), "", str(readme))
    content = collect(metrics_dir, split_dir, raw_dir, model_dir, embeddings_dir, eval_dir, config,
                      dataset_label)
    return write_report(content, out_dir, readme)
