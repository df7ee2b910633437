"""Configs for tests from the project's real ``params.yaml``, shrunk with overrides: a test never
leans on a code default (there are none), and a key added to params.yaml reaches every test."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any, TypeVar

import yaml

from pixrec.config import from_mapping

ROOT = Path(__file__).resolve().parents[1]
T = TypeVar("T")


@cache
def _params_text() -> str:
    return (ROOT / "params.yaml").read_text(encoding="utf-8")


def real_params() -> dict[str, Any]:
    """A fresh copy of the project's params.yaml."""
    return yaml.safe_load(_params_text())


def real_section(key: str) -> dict[str, Any]:
    """The mapping at dotted ``key`` of params.yaml (``"encoders.image"``)."""
    node: Any = real_params()
    for part in key.split("."):
        node = node[part]
    return node


# where each section lives in params.yaml
KEYS = {"DataConfig": "data", "SplitConfig": "split", "ImageEncoderConfig": "encoders.image",
        "TextEncoderConfig": "encoders.text", "NegativesConfig": "negatives", "FusionConfig": "fusion.model",
        "TrainConfig": "fusion.train", "FusionSection": "fusion", "TwoTowerConfig": "two_tower.model",
        "TwoTowerSection": "two_tower", "EvalConfig": "eval", "ReportConfig": "report",
        "TuneConfig": "baselines", "IntervalConfig": "eval.intervals"}
# sections nested in another's params.yaml mapping but read as their own (not fields of the outer one)
APART = {"EvalConfig": ("intervals", "rerank")}


def real_config(cls: type[T], **overrides: Any) -> T:
    """Section ``cls`` from its params.yaml section with ``overrides``, typed like the stages' own."""
    key = KEYS[cls.__name__]
    mapping = {k: v for k, v in real_section(key).items() if k not in APART.get(cls.__name__, ())}
    return from_mapping(cls, {**mapping, **overrides}, key)
