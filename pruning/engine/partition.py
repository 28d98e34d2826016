"""Splitting a plan's variants among workers without losing the prefix sharing.

Every part runs the unpruned model: it is the fidelity reference, and the trunk of the prefix
tree of kept-block sequences. A variant leaves that trunk at its first removed unit; the
variants that leave it at the same point *and* continue with the same kept block share every
state after it, and share nothing with the others but the trunk. Those subtrees are therefore
the units of a partition: each is kept whole (so a worker evaluates it with the prefix engine
exactly as a serial run does), and they are dealt largest first, by counted cost
(``pruning.engine.cost``), to the part with the least cost so far (longest-processing-time
first). ``parts`` workers count at most ``parts - 1`` extra unpruned passes over a serial run.

The deal is deterministic (ties break on the subtree's kept prefix), so the xdist controller
and every worker compute the same groups.
"""

from __future__ import annotations

from collections.abc import Sequence

from pruning.engine.cost import BranchShares, forward_cost, weighted_passes
from pruning.engine.schedule import Prefix, plan_schedule
from pruning.models.variant import BASE, Variant


def schedule_cost(variants: Sequence[Variant], n_layers: int, weight: float, share: bool = True) -> float:
    """Block-forward equivalents per window of evaluating ``variants`` (and the unpruned model)."""
    schedule = plan_schedule(list(variants), n_layers, share)
    return forward_cost(weighted_passes(schedule, BranchShares()), schedule.head_passes, weight)


def branch_point(kept: Prefix, trunk: Prefix) -> Prefix:
    """The kept prefix that names ``kept``'s subtree off ``trunk``: up to and including its first
    element that differs from the trunk (all of ``kept`` when it is a prefix of the trunk)."""
    for j, (code, unpruned) in enumerate(zip(kept, trunk, strict=False)):
        if code != unpruned:
            return kept[: j + 1]
    return kept


def subtrees(variants: Sequence[Variant], n_layers: int) -> dict[Prefix, list[Variant]]:
    """The variants (the unpruned one left out) by the subtree of the trunk they belong to."""
    trunk = BASE.kept(n_layers)
    found: dict[Prefix, list[Variant]] = {}
    for variant in sorted({v for v in variants if v != BASE}, key=lambda v: v.kept(n_layers)):
        found.setdefault(branch_point(variant.kept(n_layers), trunk), []).append(variant)
    return found


def partition(
    variants: Sequence[Variant], n_layers: int, parts: int, weight: float
) -> list[tuple[Variant, ...]]:
    """``variants`` in at most ``parts`` groups of about equal cost, each a set of whole subtrees
    off the unpruned trunk in prefix-tree order; the unpruned model (if listed) goes first."""
    if parts < 1:
        raise ValueError(f"parts {parts!r} must be an int >= 1")
    trees = subtrees(variants, n_layers)
    trunk = schedule_cost([], n_layers, weight)  # what every part pays anyway
    costs = {key: schedule_cost(members, n_layers, weight) - trunk for key, members in trees.items()}
    loads = [0.0] * parts
    groups: list[list[Variant]] = [[] for _ in range(parts)]
    for key in sorted(trees, key=lambda k: (-costs[k], k)):
        least = min(range(parts), key=lambda i: (loads[i], i))
        groups[least].extend(trees[key])
        loads[least] += costs[key]
    ordered = [sorted(g, key=lambda v: v.kept(n_layers)) for g in groups]
    if BASE in variants:
        ordered[0].insert(0, BASE)
    return [tuple(g) for g in ordered if g]
