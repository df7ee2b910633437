"""Reading params.yaml: the only place in the project that opens it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

# Idle OpenMP threads sleep instead of spinning: on a shared 2-core machine spinning threads of one
# process starve the other (measured: sbert 36 -> 106 texts/s under load). Set before torch loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def load_sections(path: Path, *keys: str) -> dict[str, Any]:
    """Return ``{key: params[key]}`` for the sections a stage declares in dvc.yaml.

    ``key`` may be dotted (``encoders.image``). A missing section is an error naming the file.
    """
    try:
        params = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise SystemExit(f"params file not found: {path}") from None
    out: dict[str, Any] = {}
    for key in keys:
        node: Any = params
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                raise SystemExit(f"{path}: section {key!r} is missing")
            node = node[part]
        out[key] = node
    return out


def fail_cleanly(fn):
    """Turn the library's input errors into one clear line and exit 1, not a traceback."""
    import functools

    from pixrec.config import ConfigError
    from pixrec.registry import UnknownNameError

    expected = (ConfigError, UnknownNameError, FileNotFoundError, ValueError)

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except expected as exc:
            import sys

            print(f"error: {exc}", file=sys.stderr)
            raise SystemExit(1) from None

    return wrapper
