"""Evaluation schedules: which blocks each variant runs, and from which cached state.

When block i is the first removed block of a variant, the hidden state entering block i is
the unpruned model's. More generally, two variants whose kept-block sequences share a prefix
share the hidden state after it. A schedule walks the variants in lexicographic order of
their kept sequences (a depth-first walk of the prefix tree), starts each one from the
deepest cached prefix state, captures the states later variants can start from, and evicts
states no later variant needs. The unpruned model always runs first and captures the states
of all its prefixes that any variant shares. Where it is scored (the fidelity reference of a
quality sweep, or a candidate of a race) it runs every block; otherwise (a race whose
candidates all remove something) it runs only up to the deepest prefix another variant
shares, and is not scored: its remaining blocks and its head would compute nothing anybody reads.

When caching a state would exceed the memory bound, it is not cached, and the variants
that would have used it start from a shallower state: slower, never an error.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pruning.models.variant import BASE, Variant

Prefix = tuple[int, ...]


@dataclass(frozen=True)
class Step:
    """One variant's forward pass: resume from ``resume``'s state, run ``run``, capture some."""

    variant: Variant
    resume: Prefix  # () = from the embeddings
    run: tuple[int, ...]  # original indices of the blocks executed
    capture: tuple[int, ...]  # positions j in ``run`` whose output state is cached
    evict: tuple[Prefix, ...]  # cached prefixes dropped after this step
    scored: bool = True  # False: runs only to share its prefixes (final norm and head skipped)


@dataclass(frozen=True)
class Schedule:
    """Steps in execution order, with their cost in block and head passes."""

    steps: tuple[Step, ...]
    n_layers: int
    peak_states: int  # most states cached at once

    @property
    def block_passes(self) -> int:
        """Block forward passes per window batch."""
        return sum(len(s.run) for s in self.steps)

    @property
    def head_passes(self) -> int:
        """LM-head passes (final norm + head) per window batch: one per scored step."""
        return sum(1 for s in self.steps if s.scored)


def plan_schedule(
    variants: Sequence[Variant],
    n_layers: int,
    share: bool = True,
    max_states: int | None = None,
    reference: bool = True,
) -> Schedule:
    """The schedule for ``variants`` (base is added first if missing).

    ``share=False`` gives the naive schedule: every variant runs all its blocks.
    ``max_states`` bounds how many hidden states are cached at once (None: no bound).
    ``reference=False`` (and base not among ``variants``): base runs only the prefixes it shares,
    unscored, and not at all when it shares none.
    """
    trunk_only = not reference and BASE not in variants
    others = sorted({v for v in variants if v != BASE}, key=lambda v: v.kept(n_layers))
    order = [BASE, *others]
    kept = [v.kept(n_layers) for v in order]
    cache: set[Prefix] = set()
    steps, peak = [], 0
    for s, variant in enumerate(order):
        seq = kept[s]
        start = _deepest_cached(seq, cache) if share else 0
        capture = []
        for j in range(start + 1, len(seq) + 1):
            prefix = seq[:j]
            if share and prefix not in cache and _needed(prefix, kept, s + 1):
                if max_states is not None and len(cache) >= max_states:
                    break
                cache.add(prefix)
                capture.append(j - start - 1)
        peak = max(peak, len(cache))
        evict = tuple(sorted(p for p in cache if not _needed(p, kept, s + 1)))
        cache.difference_update(evict)
        if s == 0 and trunk_only:  # base: up to its deepest shared prefix, unscored
            if capture:
                steps.append(Step(variant, (), seq[: capture[-1] + 1], tuple(capture), evict, False))
            continue
        steps.append(Step(variant, seq[:start], seq[start:], tuple(capture), evict))
    return Schedule(tuple(steps), n_layers, peak)


def _deepest_cached(seq: Prefix, cache: set[Prefix]) -> int:
    for j in range(len(seq), 0, -1):
        if seq[:j] in cache:
            return j
    return 0


def _needed(prefix: Prefix, kept: list[Prefix], after: int) -> bool:
    n = len(prefix)
    return any(len(k) >= n and k[:n] == prefix for k in kept[after:])
