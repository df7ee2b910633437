"""Typed params sections: ``params.yaml`` is the one home of every tunable.

A section is a frozen dataclass decorated with :func:`section`: one field per key, a type on each,
and **no default** (a default would be a second home that silently wins when a key is deleted).
:func:`from_mapping` builds one from the plain mapping a stage read, and any problem is one
:class:`ConfigError` line naming the key: a missing key, an unknown key (a key that is read but
ignored is a silent bug) or a value of the wrong type. Values are coerced where that is lossless:
YAML 1.1 reads ``3e-4`` as the *string* ``'3e-4'``, which reaches the optimiser as the float 3e-4;
``"3"`` for an int is 3; ``2.5`` for an int is an error.

Adding a tunable is three lines: the key (with a comment) in ``params.yaml``; a typed field in the
section's dataclass; the key in the stage's ``params:`` in ``dvc.yaml`` (a whole section listed
there covers it) and in that stage module's ``PARAMS``. ``tests/test_params_declared.py`` fails
until the three agree. For example::

    @section
    class NegativesConfig:
        sampler: str          # negatives.sampler in params.yaml
        per_positive: int

    from_mapping(NegativesConfig, {"sampler": "uniform", "per_positive": "4"}, "negatives")
    # NegativesConfig(sampler='uniform', per_positive=4)
    from_mapping(NegativesConfig, {"sampler": "uniform", "per_positive": 2.5}, "negatives")
    # ConfigError: negatives.per_positive: expected an integer, got 2.5

Cross-field rules go in ``__post_init__``, raising :class:`ConfigError` with the full key names, or
:class:`SectionError` about one of the section's own keys when the section does not know where it sits
(``TrainConfig`` is ``fusion.train`` and ``two_tower.train``): :func:`from_mapping` puts the location
in front (``two_tower.train.batch_size must be >= 1, got 0``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from functools import cache
from typing import Any, TypeVar

import pydantic
from pydantic import ConfigDict, TypeAdapter, ValidationError

from pixrec.errors import InputError

T = TypeVar("T")

_FORBID_EXTRA = ConfigDict(extra="forbid")

# pydantic error type -> what the key expected, in words
_EXPECTED = {
    "int_type": "an integer", "int_parsing": "an integer", "int_from_float": "an integer",
    "float_type": "a number", "float_parsing": "a number",
    "bool_type": "true or false", "bool_parsing": "true or false",
    "string_type": "a string",
    "list_type": "a list", "tuple_type": "a list", "sequence_str": "a list, not a string",
    "dict_type": "a mapping", "dataclass_type": "a mapping", "dataclass_args_type": "a mapping",
}


class ConfigError(InputError):
    """A params section has an unknown key, a missing key or a value of the wrong type."""


class SectionError(ConfigError):
    """A ``__post_init__`` error whose message starts with one of the section's own keys
    (``batch_size must be >= 1, got 0``); :func:`from_mapping` prefixes the section's dotted location."""


def section(cls: type[T]) -> type[T]:
    """Make ``cls`` a params section: a frozen dataclass whose fields are type-checked (and
    losslessly coerced) on construction, with unknown keys rejected."""
    return pydantic.dataclasses.dataclass(frozen=True, config=_FORBID_EXTRA)(cls)


@cache
def _adapter(cls: type) -> TypeAdapter:
    if getattr(cls, "__pydantic_config__", {}).get("extra") != "forbid":  # a bug, not an input error
        raise TypeError(f"{cls.__qualname__} is not a params section: decorate it with "
                        f"pixrec.config.section")
    return TypeAdapter(cls)


def from_mapping(cls: type[T], mapping: Mapping[str, Any] | None, where: str) -> T:
    """Build section ``cls`` from ``mapping``; ``where`` is its dotted key (``"train"``,
    ``"encoders.image"``) for the error line."""
    if mapping is None:
        mapping = {}
    if not isinstance(mapping, Mapping):
        raise ConfigError(f"{where}: expected a mapping of keys, got {mapping!r}")
    try:
        return _adapter(cls).validate_python(dict(mapping))
    except ValidationError as exc:
        raise ConfigError("; ".join(_describe(e, cls, where) for e in exc.errors())) from None


def _describe(error: Mapping[str, Any], cls: type, where: str) -> str:
    """One pydantic error as ``<key>: <what is wrong>``."""
    loc = error["loc"]
    key = where + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc)
    kind = error["type"]
    if kind == "missing":
        return f"{key} is missing"
    if kind in ("unexpected_keyword_argument", "extra_forbidden"):
        return f"{key}: unknown key; valid keys are {_valid_keys(cls, loc[:-1])}"
    if kind == "value_error":  # raised by __post_init__, whose message names its keys
        if isinstance(error.get("ctx", {}).get("error"), SectionError):
            return f"{key}.{error['ctx']['error']}"
        return str(error["msg"]).removeprefix("Value error, ")
    expected = _EXPECTED.get(kind)
    what = f"expected {expected}" if expected else str(error["msg"])[:1].lower() + str(error["msg"])[1:]
    return f"{key}: {what}, got {error['input']!r}"


def _valid_keys(cls: type, path: tuple) -> list[str]:
    """The keys of the (nested) section at ``path`` inside section ``cls``."""
    for part in path:
        cls = cls.__pydantic_fields__[part].annotation  # resolved types, unlike dataclasses.fields
    return sorted(f.name for f in dataclasses.fields(cls)) if dataclasses.is_dataclass(cls) else []


def to_mapping(config: Any) -> dict[str, Any]:
    """Plain-dict view of a section, for metadata files."""
    return dataclasses.asdict(config)
