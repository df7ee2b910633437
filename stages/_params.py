"""Reading params.yaml: the only place in the project that opens it.

Each stage module declares the keys it reads once, in ``PARAMS`` (the same list as its ``params:``
in dvc.yaml, ``{name}`` where dvc.yaml has ``${item.name}``), and reads them through
:func:`read_params`, which hands out only declared keys and, when the stage is done reading, checks
that every declared key was used. ``tests/test_params_declared.py`` holds dvc.yaml to the same list.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import yaml

from pixrec.config import ConfigError, from_mapping

T = TypeVar("T")


def declared(params: Sequence[str], **item: str) -> tuple[str, ...]:
    """A stage's ``PARAMS`` for one DVC matrix cell: ``{name}`` filled from ``item``."""
    return tuple(key.format(**item) for key in params)


def load_yaml(path: Path) -> Any:
    """The parsed params file; a syntax error is one line naming the file, line and column (and where
    the construct yaml was reading began: a stray quote's error surfaces lines after the quote)."""
    try:
        return yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise ConfigError(f"{path}: params file not found") from None
    except yaml.MarkedYAMLError as exc:
        where = f"line {exc.problem_mark.line + 1}, column {exc.problem_mark.column + 1}" \
            if exc.problem_mark else "an unknown place"
        problem = " ".join(str(exc.problem or "syntax error").split())
        context = ""
        if exc.context and exc.context_mark:
            context = (f" ({' '.join(exc.context.split())} that starts at line {exc.context_mark.line + 1}, "
                       f"column {exc.context_mark.column + 1})")
        raise ConfigError(f"{path}: invalid YAML at {where}: {problem}{context}") from None


def check_headline(path: Path, params: Any, headline: str) -> None:
    """``models.headline`` must be one of ``models.fit``: the report, the ablation and ``pixrec recommend``
    lead with a trained model. Checked by every stage that reads the headline, before its keys are
    looked up (a baseline named there would otherwise surface as its missing params section). Reads
    ``models.fit`` even where a stage does not declare it: the check only refuses, it changes no output."""
    models = params.get("models") if isinstance(params, Mapping) else None
    fit = models.get("fit") if isinstance(models, Mapping) else None
    if isinstance(fit, list) and headline not in fit:  # a missing or mistyped models.fit is its own error
        raise ConfigError(f"{path}: models.headline {headline!r} is not in models.fit {fit}")


class StageParams:
    """The declared keys of one params file; each read marks its key used.

    ``headline``: the model a stage was told to lead with on its command line (dvc.yaml fills it from
    ``${models.headline}``); it, or the declared ``models.headline``, is checked against ``models.fit``.
    """

    def __init__(self, path: Path, keys: Sequence[str], headline: str | None = None) -> None:
        self.path = Path(path)
        params = load_yaml(self.path)
        if headline is None and "models.headline" in keys:
            headline = self._lookup(params, "models.headline")
        if isinstance(headline, str):  # a mistyped value is the typed read's error
            check_headline(self.path, params, headline)
        self.values = {key: self._lookup(params, key) for key in keys}
        self.unread = set(keys)

    def _lookup(self, params: Any, key: str) -> Any:
        node = params
        for part in key.split("."):
            if not isinstance(node, Mapping) or part not in node:
                raise ConfigError(f"{self.path}: {key} is missing")
            node = node[part]
        return node

    def raw(self, key: str) -> Any:
        """The value of declared ``key`` as written (the caller types it)."""
        if key not in self.values:  # a bug in the stage: it reads what dvc.yaml does not track
            raise KeyError(f"{key!r} is not in this stage's PARAMS {sorted(self.values)}")
        self.unread.discard(key)
        return self.values[key]

    def section(self, cls: type[T], key: str, **fixed: Any) -> T:
        """Section ``cls`` from ``key``: the whole section when ``key`` is declared, else from the
        declared ``<key>.<field>`` entries plus ``fixed`` (fields the stage sets itself, by design)."""
        if key in self.values:
            if fixed:  # a bug in the stage: it would override what params.yaml says
                raise KeyError(f"{key} is declared whole; it cannot also have fixed fields {sorted(fixed)}")
            return self.build(cls, key, self.raw(key))
        prefix = f"{key}."
        mapping = {k[len(prefix):]: self.raw(k) for k in list(self.values) if k.startswith(prefix)}
        if overlap := sorted(set(mapping) & set(fixed)):
            raise KeyError(f"{key}: {overlap} are both declared and fixed by the stage")
        return self.build(cls, key, {**mapping, **fixed})

    def value(self, key: str, cls: type[T]) -> T:
        """Declared ``key`` typed as ``cls`` (``list[str]``, a section, ...)."""
        from pydantic import TypeAdapter, ValidationError

        try:
            return TypeAdapter(cls).validate_python(self.raw(key))
        except ValidationError:
            raise ConfigError(f"{self.path}: {key}: expected {cls}, got {self.values[key]!r}") from None

    def build(self, cls: type[T], where: str, mapping: Any) -> T:
        """:func:`pixrec.config.from_mapping` with this file named in the error line."""
        try:
            return from_mapping(cls, mapping, where)
        except ConfigError as exc:
            raise ConfigError(f"{self.path}: {exc}") from None


@contextmanager
def read_params(path: Path, keys: Sequence[str], headline: str | None = None) -> Iterator[StageParams]:
    """Read ``keys`` (dotted, e.g. ``encoders.image``) of params file ``path``; on leaving the block,
    a declared key that was never read is a bug (dvc.yaml would re-run the stage for nothing).
    ``headline``: see :class:`StageParams`."""
    params = StageParams(path, keys, headline)
    yield params
    if params.unread:
        raise AssertionError(f"declared in PARAMS but never read: {sorted(params.unread)}")


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
    """An :class:`~pixrec.errors.InputError` (bad params, data or a missing stage input) becomes one
    line on stderr and exit 1; any other exception is a bug and keeps its traceback."""
    import functools
    import time

    from pixrec.errors import InputError

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        started, ok = time.perf_counter(), False
        try:
            out = fn(*args, **kwargs)
            ok = True
            return out
        except InputError as exc:
            import sys

            print(f"error: {exc}", file=sys.stderr)
            raise SystemExit(1) from None
        finally:
            _log_stage(started, ok)

    return wrapper
