"""Splitting a plan's variants among workers without losing the prefix sharing.

The prefix-shared schedule walks variants in depth-first order of the prefix tree of their
kept-block sequences, so consecutive variants share the deepest prefixes. A partition cuts
that order into contiguous parts of about equal counted cost (``pruning.engine.cost``): each
part is a run of neighbouring subtrees, evaluated by one worker with the prefix engine. Every
part also runs the unpruned model (the fidelity reference, and the root of its states), so
``parts`` workers count at most ``parts - 1`` extra unpruned passes over a serial run.
"""

from __future__ import annotations

from collections.abc import Sequence

from pruning.engine.cost import BranchShares, forward_cost, weighted_passes
from pruning.engine.schedule import plan_schedule
from pruning.models.variant import BASE, Variant


def schedule_cost(variants: Sequence[Variant], n_layers: int, weight: float, share: bool = True) -> float:
    """Block-forward equivalents per window of evaluating ``variants`` (and the unpruned model)."""
    schedule = plan_schedule(list(variants), n_layers, share)
    return forward_cost(weighted_passes(schedule, BranchShares()), schedule.head_passes, weight)


def partition(
    variants: Sequence[Variant], n_layers: int, parts: int, weight: float
) -> list[tuple[Variant, ...]]:
    """``variants`` in at most ``parts`` groups of about equal cost, each a contiguous run of the
    prefix-tree walk; the unpruned model (if listed) goes to the first group."""
    if parts < 1:
        raise ValueError(f"parts {parts!r} must be an int >= 1")
    steps = [s for s in plan_schedule(list(variants), n_layers).steps if s.variant != BASE]
    halves = BranchShares()  # to balance parts, a block without a branch counts half a block
    costs = [forward_cost(sum(halves.of(c) for c in s.run), 1, weight) for s in steps]  # own passes
    target = sum(costs) / parts if costs else 1.0
    groups: list[list[Variant]] = [[] for _ in range(parts)]
    done = 0.0
    for step, cost in zip(steps, costs, strict=True):
        groups[min(int((done + cost / 2) / target), parts - 1)].append(step.variant)  # by midpoint
        done += cost
    if BASE in variants:
        groups[0].insert(0, BASE)
    return [tuple(g) for g in groups if g]
