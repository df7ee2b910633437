"""String-keyed registries: one per pluggable family, keyed by the names users write in params.yaml."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from pixrec.errors import InputError

T = TypeVar("T")


class UnknownNameError(InputError, KeyError):
    """An unknown registry key (a name written in params.yaml); the message lists the valid ones.

    Also a KeyError: a lookup that failed, for code that asks the registry and handles the miss.
    """

    def __str__(self) -> str:  # KeyError quotes its message; we want it readable
        return str(self.args[0])


class Registry(Generic[T]):
    """Maps a name to a class or factory. A new entry is one class and one ``@registry.register``."""

    def __init__(self, family: str) -> None:
        self.family = family
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def deco(obj: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.family} {name!r} is registered twice")
            self._entries[name] = obj
            return obj

        return deco

    def get(self, name: str) -> T:
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownNameError(
                f"unknown {self.family} {name!r}; valid names are {sorted(self._entries)}"
            ) from None

    def names(self) -> list[str]:
        return sorted(self._entries)

    def entries(self) -> list[T]:
        """Every entry in registration order (:meth:`names` is sorted)."""
        return list(self._entries.values())

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
