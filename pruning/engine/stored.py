"""Store-backed sweeps: evaluate only the (variant, window) results the store lacks.

Every window batch the engine finishes is written to the store at once, so an interrupted
sweep (Ctrl-C, kill -9) rerun with the same settings computes only what is missing, and
gives the same numbers: the engine is deterministic for fixed inputs and thread count.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from torch import nn

from pruning.data.windows import Window
from pruning.engine.prefix import EngineOptions, SweepStats, VariantScores, evaluate_variants
from pruning.engine.store import Entry, Store
from pruning.models.variant import Variant


@dataclass(frozen=True)
class SweepResult:
    """Scores per variant, the engine passes that ran, and how many results were reused."""

    scores: dict[Variant, VariantScores]
    stats: tuple[SweepStats, ...]
    reused: int
    computed: int


def run_sweep(
    model: nn.Module,
    windows: Sequence[Window],
    variants: Sequence[Variant],
    options: EngineOptions,
    store: Store | None = None,
) -> SweepResult:
    """Scores of ``variants`` on ``windows``, from ``store`` where present, else computed."""
    entries = {v: [_get(store, v, i, w) for i, w in enumerate(windows)] for v in variants}
    reused = sum(e is not None for row in entries.values() for e in row)
    groups: dict[frozenset[Variant], list[int]] = {}
    for i in range(len(windows)):
        missing = frozenset(v for v in variants if entries[v][i] is None)
        if missing:
            groups.setdefault(missing, []).append(i)
    stats = []
    for missing, indices in groups.items():
        sub = [windows[i] for i in indices]

        def keep(
            local: list[int],
            found: dict[Variant, list[tuple[float, float, int]]],
            indices: list[int] = indices,
        ) -> None:
            for variant, values in found.items():
                for j, (nll, kl, top1) in zip(local, values, strict=True):
                    i = indices[j]  # engine window j is corpus window i
                    entry = Entry(nll, kl, top1, windows[i].scored)
                    if store is not None:
                        store.put(variant, i, windows[i], entry)
                    if variant in entries:
                        entries[variant][i] = entry

        _, stat = evaluate_variants(model, sub, sorted(missing), options, keep)
        stats.append(stat)
    scores = {v: _scores(entries[v]) for v in variants}
    return SweepResult(scores, tuple(stats), reused, len(variants) * len(windows) - reused)


def _get(store: Store | None, variant: Variant, index: int, window: Window) -> Entry | None:
    return None if store is None else store.get(variant, index, window)


def _scores(entries: list[Entry | None]) -> VariantScores:
    done = [e for e in entries if e is not None]
    if len(done) != len(entries):
        raise RuntimeError("internal error: a sweep finished with missing windows")
    return VariantScores(
        nll=[e.nll for e in done],
        tokens=[e.tokens for e in done],
        kl=[e.kl for e in done],
        top1=[e.top1 for e in done],
    )
