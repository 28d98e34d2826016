"""Pruned variants and the plans that select them.

A variant is the set of removed blocks (0-based, sorted); its id is ``base`` or
``drop[i,j,...]`` and doubles as the pytest test id. Plans:
- ``sequential``: the unpruned model and every single block removed;
- ``combos:K``: the unpruned model and every K-subset of blocks;
- ``drop:1,3;2,3;1,2,3``: the unpruned model and an explicit list;
- ``last:N``: the unpruned model and the last N blocks removed except the final one
  (for 30 blocks and N=2: blocks 27 and 28).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

from pruning.surgery import normalize_drop

PLAN_KINDS = ("sequential", "combos:K", "drop:I,J;K", "last:N")


@dataclass(frozen=True, order=True)
class Variant:
    """A set of removed blocks, sorted and 0-based."""

    drop: tuple[int, ...] = ()

    @property
    def id(self) -> str:
        """``base`` or ``drop[1,3]``: stable, readable, a valid pytest id."""
        return "base" if not self.drop else f"drop[{','.join(map(str, self.drop))}]"

    def kept(self, n_layers: int) -> tuple[int, ...]:
        """The indices of the blocks this variant keeps."""
        return tuple(i for i in range(n_layers) if i not in self.drop)


BASE = Variant()


@dataclass(frozen=True)
class Plan:
    """A parsed ``--prune-plan``: kind and argument, resolved against a block count later."""

    kind: str
    arg: str = ""

    def __str__(self) -> str:
        return self.kind if not self.arg else f"{self.kind}:{self.arg}"


def parse_plan(text: str) -> Plan:
    """Parse and validate a plan string (without knowing the model's block count yet)."""
    kind, _, arg = text.strip().partition(":")
    if kind == "sequential" and not arg:
        return Plan("sequential")
    if kind in ("combos", "last") and arg.isdigit() and int(arg) >= 1:
        return Plan(kind, str(int(arg)))
    if kind == "drop" and arg:
        for group in arg.split(";"):
            _parse_ints(group, text)
        return Plan("drop", arg)
    raise ValueError(f"invalid plan {text!r}; expected one of {', '.join(PLAN_KINDS)}")


def plan_size(plan: Plan, n_layers: int) -> int:
    """How many variants ``plan`` yields on a model with ``n_layers`` blocks (base included)."""
    if plan.kind == "combos":
        return 1 + math.comb(n_layers, int(plan.arg))
    return len(expand_plan(plan, n_layers))


def expand_plan(plan: Plan, n_layers: int) -> list[Variant]:
    """The variants of ``plan``, base first; ``ValueError`` if an index does not fit the model."""
    drops: list[tuple[int, ...]]
    if plan.kind == "sequential":
        drops = [(i,) for i in range(n_layers)]
    elif plan.kind == "combos":
        k = int(plan.arg)
        if k >= n_layers:
            raise ValueError(f"combos:{k} removes too many blocks; expected K in [1, {n_layers - 1}]")
        drops = list(itertools.combinations(range(n_layers), k))
    elif plan.kind == "last":
        n = int(plan.arg)
        if n > n_layers - 2:
            raise ValueError(f"last:{n} removes too many blocks; expected N in [1, {n_layers - 2}]")
        drops = [tuple(range(n_layers - 1 - n, n_layers - 1))]
    else:
        drops = [normalize_drop(_parse_ints(g, str(plan)), n_layers) for g in plan.arg.split(";")]
    variants = [BASE]
    for drop in drops:
        variant = Variant(tuple(sorted(drop)))
        if variant not in variants:
            variants.append(variant)
    return variants


def _parse_ints(group: str, text: str) -> list[int]:
    try:
        return [int(x) for x in group.split(",")]
    except ValueError:
        raise ValueError(
            f"invalid layer list {group!r} in plan {text!r}; expected comma-separated ints, "
            f"groups separated by ';' (drop:1,3;2,3)"
        ) from None
