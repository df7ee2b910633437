"""Typed configs built from plain mappings.

The library never opens ``params.yaml``: a stage reads its own sections and hands the mapping to
:func:`from_mapping`, which rejects unknown keys (a key that is read but ignored is a silent bug)
and names the section and the valid keys.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, TypeVar

T = TypeVar("T")


class ConfigError(ValueError):
    """A params section has an unknown key, a missing key or a value of the wrong kind."""


def from_mapping(cls: type[T], mapping: Mapping[str, Any] | None, where: str) -> T:
    """Build dataclass ``cls`` from ``mapping``; ``where`` names the params section for errors."""
    mapping = dict(mapping or {})
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(mapping) - set(fields))
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {unknown}; valid keys are {sorted(fields)}"
        )
    missing = [
        name
        for name, f in fields.items()
        if name not in mapping
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise ConfigError(f"{where}: missing key(s) {missing}")
    return cls(**mapping)


def to_mapping(config: Any) -> dict[str, Any]:
    """Plain-dict view of a config dataclass, for metadata files."""
    return dataclasses.asdict(config)
