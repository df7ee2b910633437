"""Evaluation: metric functions, the sampled / full / cold protocols, and the one evaluator."""

from pixrec.evaluation.evaluator import (
    EvalConfig,
    ModelResult,
    SampledCandidates,
    TwoStage,
    evaluate_all,
    evaluate_model,
    write_outputs,
)
from pixrec.evaluation.metrics import METRICS, summarise
from pixrec.evaluation.protocols import FullRanks, full_ranking, rank_full, rank_sampled

__all__ = [
    "METRICS",
    "EvalConfig",
    "FullRanks",
    "ModelResult",
    "SampledCandidates",
    "TwoStage",
    "evaluate_all",
    "evaluate_model",
    "full_ranking",
    "rank_full",
    "rank_sampled",
    "summarise",
    "write_outputs",
]
