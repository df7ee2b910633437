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


def _log_stage(started: float, ok: bool) -> None:
    """Append this stage's wall time and peak memory to ``$PIXREC_STAGE_LOG`` (JSON lines), if set.

    The benchmark reads it; the stage's own outputs never hold timings (they must hash the same on a
    re-run). Peak memory is this process's max RSS plus that of its largest finished child (workers).
    """
    path = os.environ.get("PIXREC_STAGE_LOG")
    if not path:
        return
    import json
    import resource
    import sys
    import time

    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    child_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    record = {"argv": sys.argv, "ok": ok, "wall_s": round(time.perf_counter() - started, 3),
              "peak_rss_mib": round(kib / 1024, 1), "peak_child_rss_mib": round(child_kib / 1024, 1),
              "finished": time.strftime("%Y-%m-%dT%H:%M:%S")}
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(record) + "\n")


def fail_cleanly(fn):
    """Turn the library's input errors into one clear line and exit 1, not a traceback."""
    import functools
    import time

    from pixrec.config import ConfigError
    from pixrec.registry import UnknownNameError

    expected = (ConfigError, UnknownNameError, FileNotFoundError, ValueError)

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        started, ok = time.perf_counter(), False
        try:
            out = fn(*args, **kwargs)
            ok = True
            return out
        except expected as exc:
            import sys

            print(f"error: {exc}", file=sys.stderr)
            raise SystemExit(1) from None
        finally:
            _log_stage(started, ok)

    return wrapper
