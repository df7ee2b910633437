"""Error types. An :class:`InputError` is the user's to fix — a file, row, item or params key — and a
stage prints its message as one line and exits 1. Any other exception is a bug and keeps its
traceback, a ``ValueError`` from deep inside numpy or torch included."""

from __future__ import annotations


class InputError(ValueError):
    """Bad input data or configuration; the message names the file, row, item or key and what to do."""
