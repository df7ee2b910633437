"""Assemble the report from the pipeline's outputs and write ``index.html`` + ``index.md`` atomically.

No model is loaded and nothing is scored: every figure is read from a metrics file, the evaluator's
per-user results (``data/eval``) or a dvclive log, so a rank on the page is the rank behind the metrics.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from pixrec.atomic import atomic_dir
from pixrec.config import ConfigError, section
from pixrec.data.dataset import SplitData
from pixrec.data.modalities import empty_modalities
from pixrec.errors import InputError
from pixrec.evaluation.intervals import INTERVALS_KEY
from pixrec.report import inputs
from pixrec.report.ablation import ablation_table
from pixrec.report.content import ReportContent, Trained, dataset_sentence, headline_sentence, key_values
from pixrec.report.curve import training_curve_png
from pixrec.report.examples import Examples, Thumb, build_examples
from pixrec.report.readme import replace_section, rewrite_readme
from pixrec.report.render import render_html, render_markdown, render_results
from pixrec.report.tables import model_label, model_tables, two_stage_table
from pixrec.report.tuning import tuning_rows

HTML_FILE, MD_FILE, IMG_DIR = "index.html", "index.md", "img"


@section
class ReportConfig:
    """The ``report`` section of params.yaml: how many examples, and the seed that picks them."""

    n_example_users: int
    history_len: int
    thumb_px: int
    seed: int

    def __post_init__(self) -> None:
        for name in ("n_example_users", "history_len"):
            if getattr(self, name) < 1:
                raise ConfigError(f"report.{name} must be >= 1, got {getattr(self, name)}")
        if not 16 <= self.thumb_px <= 512:
            raise ConfigError(f"report.thumb_px must be in [16, 512], got {self.thumb_px}")


@dataclass(frozen=True)
class ReportInputs:
    """Where the report reads: metrics files, dvclive logs (``<live>/<model>/``), the split, the raw
    covers, the embeddings (only to say which modality a dataset lacks) and the evaluator's outputs."""

    metrics: Path
    live: Path
    split: Path
    raw: Path
    embeddings: Path
    eval: Path


@dataclass(frozen=True)
class Lineup:
    """``models.fit`` (the trained models, in order) and ``models.headline`` (the one the report leads
    with: its examples, its ablation)."""

    fit: list[str]
    headline: str


def _img_name(thumb: Thumb) -> str:
    safe = re.sub(r"[^A-Za-z0-9_-]", "_", thumb.item_id)[:40]
    return f"{IMG_DIR}/{thumb.item_idx}_{safe}.jpg"


def _trained(src: ReportInputs, lineup: Lineup, notes: list[str]) -> list[Trained]:
    """Each fitted model's train metrics and curve, those that exist; the rest said in ``notes``."""
    out = []
    for model in lineup.fit:
        path = Path(src.metrics) / inputs.TRAIN_DIR / f"{model}.json"
        metrics = inputs.read_json(path, f"train-{model}", required=False)
        if metrics is None:
            notes.append(f"{path} is missing: no training summary of {model} (run its train stage).")
            continue
        history = inputs.training_curve(Path(src.live) / model)
        best = metrics.get("best_epoch")
        png = training_curve_png(history, best if isinstance(best, int) else None)
        if png is None:
            notes.append(f"{Path(src.live) / model} has no training curve of {model}.")
        out.append(Trained(model, model_label(model, lineup.headline), key_values(metrics), png,
                           f"training_curve_{model}.png"))
    return out


def _examples(src: ReportInputs, data: SplitData, lineup: Lineup, config: ReportConfig,
              notes: list[str]) -> Examples | None:
    ranks = inputs.read_model_ranks(src.eval, lineup.headline, data.n_users, data.n_items)
    if ranks is None:
        notes.append(f"No example recommendations: {src.eval} has no full-ranking results of the headline "
                     f"model {lineup.headline} (train it, then run the evaluate stage).")
        return None
    return build_examples(data, src.raw, ranks, n_examples=config.n_example_users,
                          history_len=config.history_len, thumb_px=config.thumb_px, seed=config.seed)


def _optional(path: Path, stage: str, what: str, notes: list[str]) -> dict | None:
    data = inputs.read_json(path, stage, required=False)
    if data is None:
        notes.append(f"{path} is missing: no {what} (run the {stage} stage).")
    return data


def collect(src: ReportInputs, config: ReportConfig, lineup: Lineup,
            dataset_label: str | None = None) -> ReportContent:
    """Read every input: all the numbers and pictures the report shows."""
    metrics_dir = Path(src.metrics)
    evaluate = inputs.read_json(metrics_dir / inputs.EVALUATE_JSON, "evaluate")
    notes: list[str] = []
    tuning = _optional(metrics_dir / inputs.TUNING_JSON, "tune", "tuned knobs", notes)
    ablation = _optional(metrics_dir / inputs.ABLATION_JSON, "ablate", "ablation table", notes)
    sweep = inputs.read_json(metrics_dir / inputs.TWO_STAGE_JSON, "two-stage", required=False)
    notes += [f"{m} is in models.fit but not in {metrics_dir / inputs.EVALUATE_JSON}: no row for it "
              "(train it, then run the evaluate stage)." for m in lineup.fit if m not in evaluate]
    if INTERVALS_KEY not in evaluate:
        notes.append(f"{metrics_dir / inputs.EVALUATE_JSON} has no '{INTERVALS_KEY}' entry: no paired "
                     "comparison with the best baseline.")
    data = SplitData.load(src.split)
    absent = empty_modalities(src.split, src.embeddings).values()  # said once, here
    notes += [f"{what[:1].upper()}{what[1:]}." for what in absent]
    label, synthetic = inputs.dataset_label(src.raw)
    label = dataset_label or label
    summary = dict(data.report.get("summary", {}))
    trained = _trained(src, lineup, notes)
    examples = _examples(src, data, lineup, config, notes)
    sources = [str(metrics_dir / f) for f in (inputs.EVALUATE_JSON, inputs.TUNING_JSON, inputs.ABLATION_JSON,
                                              inputs.TWO_STAGE_JSON, inputs.TRAIN_DIR)]
    sources += [str(p) for p in (src.live, src.split, src.raw, src.embeddings, src.eval)]
    return ReportContent(
        dataset_label=label, synthetic=synthetic, summary=key_values(summary),
        dataset_sentence=dataset_sentence(label, synthetic, summary),
        headline=headline_sentence(lineup.headline, lineup.fit),
        tables=model_tables(evaluate, lineup.fit, lineup.headline)
        + [t for model, runs in (sweep or {}).items() if (t := two_stage_table(model, runs)) is not None],
        tuning=tuning_rows(tuning or {}), ablation=ablation_table(ablation) if ablation else None,
        trained=trained, examples=examples, sources=sources, notes=notes,
    )


def write_report(content: ReportContent, out_dir: Path, readme: Path | None = None) -> dict:
    """``out_dir/index.html`` (self-contained), ``index.md`` + ``img/`` + curves; optionally the
    results page (docs/results.md)."""
    thumbs = content.examples.thumbs if content.examples is not None else []
    with atomic_dir(Path(out_dir)) as tmp:
        (tmp / HTML_FILE).write_text(render_html(content), encoding="utf-8")
        (tmp / IMG_DIR).mkdir()
        for t in thumbs:
            (tmp / _img_name(t)).write_bytes(t.jpeg)
        for t in content.trained:
            if t.curve_png is not None:
                (tmp / t.curve_file).write_bytes(t.curve_png)
        (tmp / MD_FILE).write_text(render_markdown(content, _img_name), encoding="utf-8")
    changed = rewrite_readme(readme, render_results(content, "####")) if readme is not None else False
    return {"html": str(Path(out_dir) / HTML_FILE), "markdown": str(Path(out_dir) / MD_FILE),
            "thumbnails": len(thumbs), "tables": len(content.tables) + (content.ablation is not None),
            "readme_changed": changed}


def build_report(src: ReportInputs, out_dir: Path, config: ReportConfig, lineup: Lineup,
                 readme: Path | None = None, dataset_label: str | None = None) -> dict:
    """Read the pipeline's outputs, write the report; returns a one-line summary for the stage."""
    if readme is not None:  # a README without markers fails now, not after the reading work
        if not Path(readme).is_file():
            raise InputError(f"{readme}: no such README to rewrite")
        replace_section(Path(readme).read_text(encoding="utf-8"), "", str(readme))
    return write_report(collect(src, config, lineup, dataset_label), out_dir, readme)
