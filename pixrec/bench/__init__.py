"""The benchmark behind ``pixrec bench`` (docs/scale.md, "The benchmark"): figures, not pass/fail.

``machine``  what the figures were measured on; ``pipeline``  wall time and peak memory per pipeline
stage (from the stages' own log, ``$PIXREC_STAGE_LOG``); ``embed``  each embed stage vs its bare
encoder; ``compute``  training samples/s, full-ranking users/s of a dot-product model, fusion-model
pairs/s against the machine's matmul rate; ``serving``  ``pixrec recommend / similar / score-new`` as
whole commands (seconds, peak memory); ``suite`` runs the chosen parts on one workspace.
"""
