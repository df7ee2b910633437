"""Evaluation: metric functions, the sampled / full / cold protocols, the one evaluator, intervals and
paired tests, and the tuning of baselines on validation."""

from pixrec.evaluation.candidates import SampledCandidates
from pixrec.evaluation.config import EvalConfig
from pixrec.evaluation.evaluator import (
    ModelResult,
    TrainedModel,
    evaluate_all,
    evaluate_baselines,
    evaluate_model,
)
from pixrec.evaluation.intervals import IntervalConfig
from pixrec.evaluation.metrics import METRICS, summarise
from pixrec.evaluation.output import write_outputs
from pixrec.evaluation.protocols import FullRanks, full_ranking_metrics, rank_full, rank_sampled

__all__ = [
    "METRICS",
    "EvalConfig",
    "FullRanks",
    "IntervalConfig",
    "ModelResult",
    "SampledCandidates",
    "TrainedModel",
    "evaluate_all",
    "evaluate_baselines",
    "evaluate_model",
    "full_ranking_metrics",
    "rank_full",
    "rank_sampled",
    "summarise",
    "write_outputs",
]
