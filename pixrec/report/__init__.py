"""The results report: tables, training curve and example recommendations, as one HTML page.

Every number on the page is read from the metrics files, the per-user results or the trained
model; nothing is typed in. ``build_report`` is the entry point the report stage calls.
"""

from pixrec.report.build import ReportConfig, build_report

__all__ = ["ReportConfig", "build_report"]
