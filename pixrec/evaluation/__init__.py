"""Evaluation: metric functions and their registry (:mod:`.metrics`), the sampled / full / cold protocols
(:mod:`.protocols`), the one evaluator (:mod:`.evaluator`), intervals and paired tests (:mod:`.intervals`),
the evaluate stage's files (:mod:`.output`), two-stage ranking (:mod:`.two_stage`) and the tuning of
baselines on validation (:mod:`.tuning`). Importing this package loads none of them: import each name
from the module that defines it."""
