"""The ``eval`` section of params.yaml: the protocols' settings and two-stage ranking."""

from __future__ import annotations

from typing import Any

import pixrec.baselines.catalog  # noqa: F401  (registers every baseline: retrievers are named)
from pixrec.baselines.base import check_names, typed_knobs
from pixrec.config import ConfigError, section

RANKINGS = ("exact", "two_stage")


@section
class EvalConfig:
    """``eval.*`` without ``eval.intervals`` (read by the evaluate stage alone, see intervals.py).

    ``two_stage_retrievers`` maps each retriever's baseline name to its fixed knobs (a retriever is
    part of the two-stage ranking's definition, not a tuned yardstick row); they are typed by each
    baseline's knob section here, at load.
    """

    ks: list[int]
    batch_users: int
    seed: int
    ranking: str
    two_stage_retrievers: dict[str, Any]
    two_stage_candidates: int
    two_stage_sweep: list[int]

    def __post_init__(self) -> None:
        if not self.ks or min(self.ks) < 1:
            raise ConfigError(f"eval.ks must be a non-empty list of positive integers, got {self.ks}")
        if self.two_stage_sweep and min(self.two_stage_sweep) < 1:
            raise ConfigError(f"eval.two_stage_sweep must be a list of positive integers, "
                              f"got {self.two_stage_sweep}")
        if self.batch_users < 1 or self.two_stage_candidates < 1:
            raise ConfigError("eval: batch_users and two_stage_candidates must be >= 1")
        if self.ranking not in RANKINGS:
            raise ConfigError(f"eval.ranking must be one of {list(RANKINGS)}, got {self.ranking!r}")
        where = "eval.two_stage_retrievers"
        check_names(self.two_stage_retrievers, where)
        typed = {name: typed_knobs(name, knobs, where) for name, knobs in self.two_stage_retrievers.items()}
        object.__setattr__(self, "two_stage_retrievers", typed)  # frozen: set once, here
