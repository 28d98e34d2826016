"""The plan grammar: which pruned variants (``pruning.models.variant``) a run measures.

Plans:
- ``sequential``: the unpruned model and every single block removed; ``sequential:attn``,
  ``sequential:mlp``, ``sequential:units``: every single attention branch, MLP branch, or both
  (``pruning.models.sublayers``);
- ``combos:K``: the unpruned model and every K-subset of blocks;
- ``drop:1,3;2,3;attn5,mlp7;12``: the unpruned model and an explicit list (units ``12``: a
  whole block, ``attn5`` / ``mlp7``: a branch of block 5 / 7);
- ``last:N``: the unpruned model and the last N blocks removed except the final one
  (for 30 blocks and N=2: blocks 27 and 28);
- ``best:K=2,...`` and ``criterion:NAME:K=1..N`` search (``pruning.study.expansion``); both take
  ``units=blocks|attn|mlp|all`` (default ``blocks``): K then counts units of that space, a whole
  block counting as its two branches in ``all``.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

from pruning.models.variant import (
    BASE,
    UNIT_SPACES,
    Variant,
    check_units,
    last_blocks,
    normalize_drop,
    space_names,
)

PLAN_KINDS = (
    "sequential[:attn|mlp|units]",
    "combos:K",
    "drop:I,J;attnK,mlpL",
    "last:N",
    "best:K=2,top=10,search=race|beam:W,units=blocks|attn|mlp|all",
    "criterion:NAME|all:K=1..6[,units=blocks|attn|mlp|all]",
)


SEQUENTIAL_UNITS = {"": ("block",), "attn": ("attn",), "mlp": ("mlp",), "units": ("attn", "mlp")}


@dataclass(frozen=True)
class Plan:
    """A parsed ``--prune-plan``: kind and argument, resolved against a block count later."""

    kind: str
    arg: str = ""

    def __str__(self) -> str:
        return self.kind if not self.arg else f"{self.kind}:{self.arg}"

    @property
    def searches(self) -> bool:
        """Whether expanding the plan runs a search (``best:``, ``criterion:``), which the study does."""
        return self.kind in ("best", "criterion")


def parse_plan(text: str) -> Plan:
    """Parse and validate a plan string (without knowing the model's block count yet)."""
    kind, _, arg = text.strip().partition(":")
    if kind == "sequential" and arg in SEQUENTIAL_UNITS:
        return Plan("sequential", arg)
    if kind in ("combos", "last") and arg.isdigit() and int(arg) >= 1:
        return Plan(kind, str(int(arg)))
    if kind == "drop" and arg:
        for group in arg.split(";"):
            _parse_units(group, text)
        return Plan("drop", arg)
    if kind == "best" and arg:
        parse_best(arg)
        return Plan("best", arg)
    if kind == "criterion" and arg:
        parse_criterion_plan(arg)
        return Plan("criterion", arg)
    raise ValueError(f"invalid plan {text!r}; expected one of {', '.join(PLAN_KINDS)}")


@dataclass(frozen=True)
class BestSpec:
    """``best:K=2,top=10,search=race`` or ``search=beam:4``, ``units=all``: search the best
    removals of K units of a space (``pruning.models.variant.UNIT_SPACES``)."""

    k: int
    top: int = 10
    search: str = "race"  # race | beam
    width: int = 1  # beam width (beam:1 is greedy)
    units: str = "blocks"


def parse_best(arg: str) -> BestSpec:
    """Parse the argument of a ``best:`` plan; ``ValueError`` quoting it otherwise."""
    fields = dict(part.partition("=")[::2] for part in arg.split(","))
    search, _, width = fields.pop("search", "race").partition(":")
    units = fields.pop("units", "blocks")
    try:
        spec = BestSpec(int(fields.pop("K")), int(fields.pop("top", "10")), search, int(width or 1), units)
    except (KeyError, ValueError):
        spec = None
    if (
        spec is None
        or fields
        or search not in ("race", "beam")
        or units not in UNIT_SPACES
        or min(spec.k, spec.top, spec.width) < 1
    ):
        raise ValueError(
            f"invalid best plan 'best:{arg}'; expected best:K=<int>[,top=<int>][,search=race|beam:<width>]"
            f"[,units={'|'.join(UNIT_SPACES)}]"
        )
    return spec


ORACLES = ("pairs", "greedy")
PAIR_RACE_LIMIT = 500  # above this many pairs the default oracle grows greedily from the best single


@dataclass(frozen=True)
class CriterionSpec:
    """``criterion:NAME:K=1..6,units=attn,oracle=greedy``: criterion NAME (or ``all``) for K =
    1..k_max units; the oracle's K=2 set races all pairs (``pairs``) or grows the best single
    (``greedy``; ``""``: pairs up to ``PAIR_RACE_LIMIT`` pairs, greedy above)."""

    name: str
    k_max: int
    units: str = "blocks"
    oracle: str = ""

    def races_pairs(self, n_layers: int) -> bool:
        """Whether the oracle races every pair of units for K=2."""
        if self.oracle:
            return self.oracle == "pairs"
        n = len(space_names(self.units, n_layers))
        return n * (n - 1) // 2 <= PAIR_RACE_LIMIT


def parse_criterion_plan(arg: str) -> CriterionSpec:
    """``NAME:K=1..6[,units=all][,oracle=pairs|greedy]``; NAME is a criterion or ``all`` (checked
    against the registry later); ``ValueError`` quoting the plan otherwise."""
    name, _, rest = arg.partition(":")
    ks, *options = rest.split(",")
    fields = dict(part.partition("=")[::2] for part in options)
    units, oracle = fields.pop("units", "blocks"), fields.pop("oracle", "")
    low, _, high = ks.removeprefix("K=").partition("..")
    valid = name and ks.startswith("K=") and low == "1" and high.isdigit() and int(high) >= 1
    if valid and not fields and units in UNIT_SPACES and oracle in ("", *ORACLES):
        return CriterionSpec(name, int(high), units, oracle)
    raise ValueError(
        f"invalid criterion plan 'criterion:{arg}'; expected criterion:NAME:K=1..N[,units="
        f"{'|'.join(UNIT_SPACES)}][,oracle={'|'.join(ORACLES)}] (NAME or all)"
    )


def plan_size(plan: Plan, n_layers: int) -> int:
    """How many variants ``plan`` yields on a model with ``n_layers`` blocks (base included)."""
    if plan.kind == "combos":
        return 1 + math.comb(n_layers, int(plan.arg))
    if plan.kind == "best":
        return 1 + parse_best(plan.arg).top
    if plan.kind == "criterion":  # base, singles, and at most one set per criterion and K (and the oracle)
        spec = parse_criterion_plan(plan.arg)
        return 1 + len(space_names(spec.units, n_layers)) + 8 * spec.k_max
    return len(expand_plan(plan, n_layers))


def expand_plan(plan: Plan, n_layers: int) -> list[Variant]:
    """The variants of ``plan``, base first; ``ValueError`` if an index does not fit the model."""
    found: list[Variant]
    if plan.kind == "sequential":
        found = [_single(unit, i) for unit in SEQUENTIAL_UNITS[plan.arg] for i in range(n_layers)]
    elif plan.kind == "combos":
        k = int(plan.arg)
        if k >= n_layers:
            raise ValueError(f"combos:{k} removes too many blocks; expected K in [1, {n_layers - 1}]")
        found = [Variant(c) for c in itertools.combinations(range(n_layers), k)]
    elif plan.searches:
        raise ValueError(f"a {plan.kind}: plan is resolved by the study (pruning.study.study.Study.variants)")
    elif plan.kind == "last":
        n = int(plan.arg)
        if n > n_layers - 2:
            raise ValueError(f"last:{n} removes too many blocks; expected N in [1, {n_layers - 2}]")
        found = [Variant(last_blocks(n, n_layers))]
    else:
        found = [_variant(_parse_units(g, str(plan)), n_layers) for g in plan.arg.split(";")]
    variants = [BASE]
    for variant in found:
        if variant not in variants:
            variants.append(variant)
    return variants


def _single(unit: str, i: int) -> Variant:
    return Variant(attn=(i,)) if unit == "attn" else Variant(mlp=(i,)) if unit == "mlp" else Variant((i,))


def _variant(units: tuple[list[int], list[int], list[int]], n_layers: int) -> Variant:
    """A variant from parsed (blocks, attn, mlp) lists, each checked against the model."""
    kinds = ("layer", "attn", "mlp")
    drop, attn, mlp = (normalize_drop(ix, n_layers, what) for ix, what in zip(units, kinds, strict=True))
    check_units(drop, attn, mlp)
    return Variant(drop, "", attn, mlp)


def _parse_units(group: str, text: str) -> tuple[list[int], list[int], list[int]]:
    """``1,attn5,mlp7`` -> ([1], [5], [7]); ``ValueError`` quoting the group otherwise."""
    found: tuple[list[int], list[int], list[int]] = ([], [], [])
    try:
        for token in group.split(","):
            token = token.strip()
            kind = 1 if token.startswith("attn") else 2 if token.startswith("mlp") else 0
            found[kind].append(int(token.removeprefix("attn").removeprefix("mlp")))
    except ValueError:
        raise ValueError(
            f"invalid unit list {group!r} in plan {text!r}; expected comma-separated units (a block "
            f"index, attnN or mlpN), groups separated by ';' (drop:1,3;attn5,mlp7)"
        ) from None
    return found
