"""Per-window sums, the one shape quality results take from the engine through the store to rows,
and perplexity from them (the one ``ppl``).

Definitions: a window's ``nll`` is the sum over its scored positions of -log p(target) (float64);
``kl`` the sum of KL(reference || model) over those positions; ``top1`` how many of them have the
reference's top token as a top token (``pruning.metrics.scoring``); ``tokens`` how many positions
are scored. Means divide a variant's sums over all windows by its scored tokens; perplexity is
exp(sum NLL / sum tokens), summed with ``math.fsum`` so the order of windows never changes a
digit.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


def ppl(nll: float | Iterable[float], tokens: int | Iterable[int]) -> float:
    """exp(NLL sum / scored tokens); iterables (per-window sums) are summed first (``math.fsum``)."""
    nll_sum = nll if isinstance(nll, float | int) else math.fsum(nll)
    count = tokens if isinstance(tokens, int) else sum(tokens)
    return math.exp(nll_sum / count)


@dataclass(frozen=True)
class WindowSums:
    """One variant's sums on one window (see the module docstring for each definition)."""

    nll: float
    kl: float
    top1: int
    tokens: int


@dataclass(frozen=True)
class VariantSums:
    """One variant's ``WindowSums`` in window order, and the aggregates a row reports."""

    windows: tuple[WindowSums, ...]

    @classmethod
    def of(cls, windows: Sequence[WindowSums]) -> VariantSums:
        return cls(tuple(windows))

    @property
    def nll(self) -> list[float]:
        return [w.nll for w in self.windows]

    @property
    def kl(self) -> list[float]:
        return [w.kl for w in self.windows]

    @property
    def top1(self) -> list[int]:
        return [w.top1 for w in self.windows]

    @property
    def tokens(self) -> list[int]:
        return [w.tokens for w in self.windows]

    @property
    def scored(self) -> int:
        """Scored tokens over all windows."""
        return sum(self.tokens)

    @property
    def ppl(self) -> float:
        return ppl(self.nll, self.scored)

    @property
    def mean_kl(self) -> float:
        """KL per scored token."""
        return math.fsum(self.kl) / self.scored

    @property
    def top1_agree(self) -> float:
        """Share of scored tokens whose top token agrees with the reference's."""
        return sum(self.top1) / self.scored
