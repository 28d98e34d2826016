"""Typed name -> entry registries filled by a decorator (models, corpora, criteria)."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """A dict of named entries; unknown names list the choices and suggest the closest."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator that files ``entry`` under ``name`` (names are unique)."""

        def decorate(entry: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._entries[name] = entry
            return entry

        return decorate

    def get(self, name: str) -> T:
        """The entry for ``name``; a ``KeyError`` naming the choices otherwise."""
        try:
            return self._entries[name]
        except KeyError:
            raise KeyError(self.unknown_message(name)) from None

    def unknown_message(self, name: str) -> str:
        """Error text for an unknown name: the choices and the closest match."""
        return unknown_name(self.kind, name, self.names())

    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


def unknown_name(kind: str, name: str, names: Sequence[str]) -> str:
    """Error text for an unknown ``kind`` ``name``: the choices (sorted) and the closest match."""
    close = difflib.get_close_matches(name, list(names), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"unknown {kind} {name!r}; expected one of {', '.join(sorted(names))}{hint}"
