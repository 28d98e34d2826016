"""The plan grammar: which pruned variants (``pruning.models.variant``) a run measures.

A plan is one of six frozen specs (``Plan``), and ``parse_plan`` is the only function that reads
a plan's text. Everything else (``plan_size``, ``expand_plan``, ``pruning.study.expansion``)
takes the parsed spec, and ``str(spec)`` writes the canonical text back, which parses to an
equal spec.

- ``sequential``: the unpruned model and every single block removed; ``sequential:attn``,
  ``sequential:mlp``, ``sequential:units``: every single attention branch, MLP branch, or both
  (``pruning.models.sublayers``) -> ``Sequential``;
- ``combos:K``: the unpruned model and every K-subset of blocks -> ``Combos``;
- ``drop:1,3;2,3;attn5,mlp7;12``: the unpruned model and an explicit list (units ``12``: a
  whole block, ``attn5`` / ``mlp7``: a branch of block 5 / 7) -> ``Explicit``;
- ``last:N``: the unpruned model and the last N blocks removed except the final one
  (for 30 blocks and N=2: blocks 27 and 28) -> ``Last``;
- ``best:K=2,...`` -> ``Best`` and ``criterion:NAME:K=1..N`` -> ``Criterion`` search
  (``pruning.study.expansion``); both take ``units=blocks|attn|mlp|all`` (default ``blocks``):
  K then counts units of that space, a whole block counting as its two branches in ``all``.
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
    "criterion:NAME[+NAME..]|all:K=1..6[,units=blocks|attn|mlp|all][,oracle=pairs|greedy]",
)
SEARCHES = ("race", "beam")
ORACLES = ("pairs", "greedy")
PAIR_RACE_LIMIT = 500  # above this many pairs the default oracle grows greedily from the best single
_SEQUENTIAL_TEXT = {"blocks": "", "attn": "attn", "mlp": "mlp", "all": "units"}  # units -> suffix


@dataclass(frozen=True)
class Sequential:
    """Every single unit of ``units`` (a ``UNIT_SPACES`` name) removed, one variant each."""

    units: str = "blocks"

    def __str__(self) -> str:
        suffix = _SEQUENTIAL_TEXT[self.units]
        return f"sequential:{suffix}" if suffix else "sequential"


@dataclass(frozen=True)
class Combos:
    """Every set of ``k`` blocks."""

    k: int

    def __str__(self) -> str:
        return f"combos:{self.k}"


@dataclass(frozen=True)
class UnitSet:
    """One removal of an explicit plan as written: block indices (negative ones count from the
    end), and the blocks that lose their attention or MLP branch."""

    blocks: tuple[int, ...] = ()
    attn: tuple[int, ...] = ()
    mlp: tuple[int, ...] = ()

    def __str__(self) -> str:
        names = [str(i) for i in self.blocks] + [f"attn{i}" for i in self.attn]
        return ",".join(names + [f"mlp{i}" for i in self.mlp])


@dataclass(frozen=True)
class Explicit:
    """A listed set of removals, in the order given."""

    sets: tuple[UnitSet, ...]

    def __str__(self) -> str:
        return "drop:" + ";".join(map(str, self.sets))


@dataclass(frozen=True)
class Last:
    """The last ``n`` blocks but the final one, removed together."""

    n: int

    def __str__(self) -> str:
        return f"last:{self.n}"


@dataclass(frozen=True)
class Best:
    """Search the ``top`` best removals of ``k`` units of ``units``: by racing on the evaluation
    text (``race``) or by beam search of ``width`` on calibration text (``beam``; 1 is greedy)."""

    k: int
    top: int = 10
    search: str = "race"
    width: int = 1
    units: str = "blocks"

    def __str__(self) -> str:
        fields = [f"K={self.k}"] + ([f"top={self.top}"] if self.top != 10 else [])
        fields += [f"search=beam:{self.width}"] if self.search == "beam" else []
        fields += [f"units={self.units}"] if self.units != "blocks" else []
        return "best:" + ",".join(fields)


@dataclass(frozen=True)
class Criterion:
    """Criteria ``names`` (empty: every registered one, written ``all``) for K = 1..``k_max``
    units; the oracle's K=2 set races all pairs (``pairs``) or grows the best single
    (``greedy``; ``""``: pairs up to ``PAIR_RACE_LIMIT`` pairs, greedy above)."""

    names: tuple[str, ...]
    k_max: int
    units: str = "blocks"
    oracle: str = ""

    def __str__(self) -> str:
        fields = [f"K=1..{self.k_max}"] + ([f"units={self.units}"] if self.units != "blocks" else [])
        fields += [f"oracle={self.oracle}"] if self.oracle else []
        return f"criterion:{'+'.join(self.names) or 'all'}:" + ",".join(fields)

    def races_pairs(self, n_layers: int) -> bool:
        """Whether the oracle races every pair of units for K=2."""
        if self.oracle:
            return self.oracle == "pairs"
        n = len(space_names(self.units, n_layers))
        return n * (n - 1) // 2 <= PAIR_RACE_LIMIT


Plan = Sequential | Combos | Explicit | Last | Best | Criterion
SEARCH_PLANS = (Best, Criterion)  # expanded by the study, which runs their searches


def searches(plan: Plan) -> bool:
    """Whether expanding ``plan`` runs a search (``best:``, ``criterion:``), which the study does."""
    return isinstance(plan, SEARCH_PLANS)


def parse_plan(text: str) -> Plan:
    """The plan ``text`` means (without knowing the model's block count yet); ``ValueError``
    quoting it and listing the plan kinds otherwise."""
    kind, _, arg = text.strip().partition(":")
    if kind == "sequential" and arg in _SEQUENTIAL_TEXT.values():
        return Sequential(next(u for u, suffix in _SEQUENTIAL_TEXT.items() if suffix == arg))
    if kind in ("combos", "last") and arg.isdigit() and int(arg) >= 1:
        return Combos(int(arg)) if kind == "combos" else Last(int(arg))
    if kind == "drop" and arg:
        return Explicit(tuple(_parse_units(group, text) for group in arg.split(";")))
    if kind == "best" and arg:
        return _parse_best(arg)
    if kind == "criterion" and arg:
        return _parse_criterion(arg)
    raise ValueError(f"invalid plan {text!r}; expected one of {', '.join(PLAN_KINDS)}")


def _fields(parts: list[str]) -> dict[str, str] | None:
    """``["K=2", "top=5"]`` -> ``{"K": "2", "top": "5"}``; None for a part without ``=`` or a
    field given twice."""
    pairs = [part.partition("=") for part in parts]
    if any(not sep or not key for key, sep, _ in pairs) or len({k for k, _, _ in pairs}) != len(pairs):
        return None
    return {key: value for key, _, value in pairs}


def _parse_best(arg: str) -> Best:
    """``K=2[,top=10][,search=race|beam:W][,units=...]``; ``ValueError`` quoting it otherwise."""
    fields = _fields(arg.split(",")) or {}
    search, _, width = fields.pop("search", "race").partition(":")
    units = fields.pop("units", "blocks")
    numbers = (fields.pop("K", ""), fields.pop("top", "10"), width or "1")
    valid = all(n.isdigit() and int(n) >= 1 for n in numbers) and not fields
    if valid and units in UNIT_SPACES and (search == "beam" or (search == "race" and not width)):
        k, top, beam_width = map(int, numbers)
        return Best(k, top, search, beam_width, units)
    raise ValueError(
        f"invalid best plan 'best:{arg}'; expected best:K=<int>[,top=<int>][,search=race|beam:<width>]"
        f"[,units={'|'.join(UNIT_SPACES)}]"
    )


def _parse_criterion(arg: str) -> Criterion:
    """``NAME[+NAME..]:K=1..6[,units=all][,oracle=pairs|greedy]``; NAME is a criterion or ``all``
    (names are checked against the registry when the plan expands); ``ValueError`` otherwise."""
    name, _, rest = arg.partition(":")
    ks, *options = rest.split(",")
    fields = _fields(options) if options else {}
    low, _, high = ks.removeprefix("K=").partition("..")
    names = tuple(name.split("+")) if name != "all" else ()
    valid = name and all(names) and len(set(names)) == len(names) and "all" not in names
    valid = valid and ks.startswith("K=") and low == "1" and high.isdigit() and int(high) >= 1
    if valid and fields is not None:
        units, oracle = fields.pop("units", "blocks"), fields.pop("oracle", "")
        if not fields and units in UNIT_SPACES and oracle in ("", *ORACLES):
            return Criterion(names, int(high), units, oracle)
    raise ValueError(
        f"invalid criterion plan 'criterion:{arg}'; expected criterion:NAME:K=1..N[,units="
        f"{'|'.join(UNIT_SPACES)}][,oracle={'|'.join(ORACLES)}] (NAME: a criterion, "
        f"several joined by '+', or all)"
    )


def plan_size(plan: Plan, n_layers: int) -> int:
    """How many variants ``plan`` yields on a model with ``n_layers`` blocks (base included)."""
    if isinstance(plan, Combos):
        return 1 + math.comb(n_layers, plan.k)
    if isinstance(plan, Best):
        return 1 + plan.top
    if isinstance(plan, Criterion):  # base, singles, and at most one set per criterion and K (and the oracle)
        return 1 + len(space_names(plan.units, n_layers)) + 8 * plan.k_max
    return len(expand_plan(plan, n_layers))


def expand_plan(plan: Plan, n_layers: int) -> list[Variant]:
    """The variants of ``plan``, base first; ``ValueError`` if an index does not fit the model."""
    found: list[Variant]
    if isinstance(plan, Sequential):
        kinds = {"blocks": ("",), "attn": ("attn",), "mlp": ("mlp",), "all": ("attn", "mlp")}
        found = [_single(kind, i) for kind in kinds[plan.units] for i in range(n_layers)]
    elif isinstance(plan, Combos):
        if plan.k >= n_layers:
            raise ValueError(f"{plan} removes too many blocks; expected K in [1, {n_layers - 1}]")
        found = [Variant(c) for c in itertools.combinations(range(n_layers), plan.k)]
    elif isinstance(plan, SEARCH_PLANS):
        raise ValueError(f"a {plan} plan is resolved by the study (pruning.study.study.Study.variants)")
    elif isinstance(plan, Last):
        if plan.n > n_layers - 2:
            raise ValueError(f"{plan} removes too many blocks; expected N in [1, {n_layers - 2}]")
        found = [Variant(last_blocks(plan.n, n_layers))]
    else:
        found = [_variant(units, n_layers) for units in plan.sets]
    variants = [BASE]
    for variant in found:
        if variant not in variants:
            variants.append(variant)
    return variants


def _single(kind: str, i: int) -> Variant:
    return Variant(attn=(i,)) if kind == "attn" else Variant(mlp=(i,)) if kind == "mlp" else Variant((i,))


def _variant(units: UnitSet, n_layers: int) -> Variant:
    """The variant of one explicit removal, each index checked against the model."""
    kinds = ("layer", "attn", "mlp")
    given = (units.blocks, units.attn, units.mlp)
    drop, attn, mlp = (normalize_drop(ix, n_layers, what) for ix, what in zip(given, kinds, strict=True))
    check_units(drop, attn, mlp)
    return Variant(drop, "", attn, mlp)


def _parse_units(group: str, text: str) -> UnitSet:
    """``1,attn5,mlp7`` -> ``UnitSet((1,), (5,), (7,))``; ``ValueError`` quoting the group otherwise."""
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
    return UnitSet(*(tuple(ix) for ix in found))
