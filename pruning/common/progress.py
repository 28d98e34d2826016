"""Progress of long steps: a tqdm bar by default, or any sink with the same two methods.

The library never writes to a terminal itself beyond tqdm; a caller that owns the terminal
(the pytest plugin, whose output capture would swallow a tqdm bar) passes a ``BarFactory``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, Union

from tqdm.auto import tqdm


class Bar(Protocol):
    """What a long step reports to: ``update`` after each unit of work, ``close`` at the end,
    ``set_postfix_str`` for a short status beside the count (a training loss; tqdm's name)."""

    def update(self, n: int = 1) -> object: ...

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> object: ...

    def close(self) -> None: ...


BarFactory = Callable[[str, int], Bar]  # (description, total units) -> a bar
Progress = Union[bool, None, BarFactory]  # noqa: UP007  True/False: tqdm on/off; None: on a terminal


def open_bar(description: str, total: int, progress: Progress) -> Bar:
    """A bar for ``total`` units: the caller's factory, or tqdm (``None``: only on a terminal)."""
    if callable(progress):
        return progress(description, total)
    bar: Bar = tqdm(total=total, desc=description, disable=None if progress is None else not progress)
    return bar
