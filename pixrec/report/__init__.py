"""The results report: tables with intervals and paired tests, tuned knobs, ablation, training curves
and example recommendations, as one HTML page and Markdown.

Every number on the page is read from the metrics files, the evaluator's per-user results or the
training logs; nothing is typed in and no model is loaded. :func:`pixrec.report.build.build_report` is
the entry point the report stage calls; importing this package loads none of the modules.
"""
