"""What "chosen on validation" means, shared by the tune stage and every model that measures itself
against the tuned baselines: the cut-off and the keys of ``metrics/tuning.json`` it writes.

Kept apart from :mod:`pixrec.evaluation.tuning` so that a model reads the yardstick's keys without
importing (and so depending on) every baseline."""

SELECT_K = 10  # knobs are chosen by validation NDCG@10, full ranking
VALID_FULL = f"valid_ndcg@{SELECT_K}"  # keys of metrics/tuning.json: at the chosen knobs, every
VALID_COLD = f"valid_cold_ndcg@{SELECT_K}"  # validation user / those whose item is cold
