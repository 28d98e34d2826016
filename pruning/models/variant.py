"""The pruned-variant value type: which blocks a variant removes, and its stable id.

It lives at the bottom, next to surgery, because the engine, the store, the searches and the
reports all name variants; only the plan grammar that selects them belongs to ``pruning.study``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

# ``Variant.id``'s syntax: ``base`` or ``drop[units]``, then ``+heal`` for a healed variant.
ID_SYNTAX = re.compile(r"(base|drop\[(\d+|attn\d+|mlp\d+)(,(\d+|attn\d+|mlp\d+))*\])(\+[\w-]+)?")


@dataclass(frozen=True, order=True)
class Variant:
    """What a variant removes (sorted, 0-based block indices) and the healing applied after.

    ``drop``: whole blocks; ``attn`` / ``mlp``: blocks that lose only their attention or MLP
    branch (``pruning.models.sublayers``); ``heal`` names a method of ``pruning.healing``
    (``""``: none); a healed variant is measured against its unhealed one (``unhealed``).
    """

    drop: tuple[int, ...] = ()
    heal: str = ""
    attn: tuple[int, ...] = ()
    mlp: tuple[int, ...] = ()

    @property
    def units(self) -> tuple[str, ...]:
        """The removed units in block order: ``12`` (a whole block), ``attn5``, ``mlp7``."""
        return tuple(name for *_, name in self._named())

    @property
    def sort_key(self) -> tuple[tuple[tuple[int, int], ...], str]:
        """Block order of the removed units (a block before its attn before its mlp), then healing."""
        return tuple((i, kind) for i, kind, _ in self._named()), self.heal

    def _named(self) -> list[tuple[int, int, str]]:
        named = [(i, 0, str(i)) for i in self.drop] + [(i, 1, f"attn{i}") for i in self.attn]
        return sorted(named + [(i, 2, f"mlp{i}") for i in self.mlp])

    @property
    def sublayers(self) -> tuple[str, ...]:
        """The removed sub-layer units only (``attn5``, ``mlp7``)."""
        return tuple(u for u in self.units if not u.isdigit())

    @property
    def id(self) -> str:
        """``base``, ``drop[1,3]``, ``drop[attn5,mlp7,12]`` or ``drop[1,3]+lora``: stable, readable,
        a valid pytest id."""
        plain = f"drop[{','.join(self.units)}]" if self.units else "base"
        return f"{plain}+{self.heal}" if self.heal else plain

    @staticmethod
    def looks_like_id(text: str) -> bool:
        """Whether ``text`` has the syntax of a variant id (``ID_SYNTAX``), e.g. a test's parameter id."""
        return ID_SYNTAX.fullmatch(text) is not None

    @property
    def is_base(self) -> bool:
        """Whether this is the unpruned model."""
        return not self.units

    @property
    def shares_prefixes(self) -> bool:
        """Whether the prefix-shared engine can evaluate it: removals of units of the loaded
        weights (a healed model has other weights)."""
        return not self.heal

    @property
    def unhealed(self) -> Variant:
        """The same removal without healing."""
        return Variant(self.drop, "", self.attn, self.mlp)

    def kept(self, n_layers: int) -> tuple[int, ...]:
        """The blocks this variant keeps, as kept-block codes (``kept_code``): a whole block is its
        index, so a whole-block variant's sequence is its kept indices; a block without one
        branch has a negative code. The prefix-shared engine walks these sequences."""
        return tuple(
            kept_code(i, ATTN if i in self.attn else MLP if i in self.mlp else "")
            for i in range(n_layers)
            if i not in self.drop
        )

    def within(self, space: str) -> bool:
        """Whether this removal consists of units of ``space`` (``all``: any unhealed removal)."""
        if self.heal:
            return False
        return {
            "blocks": not self.attn and not self.mlp,
            ATTN: not self.drop and not self.mlp,
            MLP: not self.drop and not self.attn,
        }.get(space, True)

    def size(self, space: str) -> int:
        """How many units of ``space`` (``UNIT_SPACES``) this variant removes: blocks for
        ``blocks``; branches otherwise, a whole block counting as its two branches."""
        return len(space_units(self, space))


BASE = Variant()
ATTN, MLP = "attn", "mlp"
UNIT_SPACES = ("blocks", "attn", "mlp", "all")
"""What a search or criterion removes: whole blocks, attention branches, MLP branches, or both kinds
of branch (``all``: removing both branches of a block is removing the block)."""


def kept_code(block: int, removed: str = "") -> int:
    """A kept block and the branch it lost (``""``, ``attn`` or ``mlp``) as one int: the block's
    index when whole, ``~(2 * block)`` without attention, ``~(2 * block + 1)`` without MLP."""
    return block if not removed else ~(2 * block + (removed == MLP))


def decode_kept(code: int) -> tuple[int, str]:
    """The inverse of ``kept_code``: (block index, removed branch or ``""``)."""
    return (code, "") if code >= 0 else ((~code) // 2, MLP if (~code) % 2 else ATTN)


def check_space(space: str) -> str:
    """``space`` if it is one of ``UNIT_SPACES``; ``ValueError`` quoting it otherwise."""
    if space not in UNIT_SPACES:
        raise ValueError(f"invalid units {space!r}; expected one of {', '.join(UNIT_SPACES)}")
    return space


def space_names(space: str, n_layers: int) -> tuple[str, ...]:
    """Every unit of ``space`` in block order: ``0 .. 29``, ``attn0 ..``, or ``attn0, mlp0, attn1, ..``."""
    kinds = {"blocks": ("",), "attn": (ATTN,), "mlp": (MLP,), "all": (ATTN, MLP)}[check_space(space)]
    return tuple(f"{kind}{i}" for i in range(n_layers) for kind in kinds)


def space_units(variant: Variant, space: str) -> frozenset[str]:
    """The units of ``space`` that ``variant`` removes (a whole block is both its branches)."""
    if space == "blocks":
        return frozenset(str(i) for i in variant.drop)
    kinds = (ATTN, MLP) if space == "all" else (space,)
    removed = {ATTN: {*variant.drop, *variant.attn}, MLP: {*variant.drop, *variant.mlp}}
    return frozenset(f"{kind}{i}" for kind in kinds for i in removed[kind])


def from_units(names: frozenset[str] | tuple[str, ...] | list[str]) -> Variant:
    """The variant removing units ``names`` (``12``, ``attn5``, ``mlp7``); a block losing both
    branches is removed whole, so each removal has one variant (and one id)."""
    drop = {int(n) for n in names if n.isdigit()}
    attn = {int(n[len(ATTN) :]) for n in names if n.startswith(ATTN)}
    mlp = {int(n[len(MLP) :]) for n in names if n.startswith(MLP)}
    drop |= attn & mlp
    return Variant(tuple(sorted(drop)), "", tuple(sorted(attn - drop)), tuple(sorted(mlp - drop)))


def last_blocks(n: int, n_layers: int) -> tuple[int, ...]:
    """The last ``n`` blocks but the final one (for 30 blocks and n=2: blocks 27 and 28)."""
    return tuple(range(n_layers - 1 - n, n_layers - 1))


def normalize_drop(drop: Iterable[int], n_layers: int, what: str = "layer") -> tuple[int, ...]:
    """Sorted 0-based indices from ``drop`` (negative ones count from the end).

    Raises ``ValueError`` for an index out of range, a duplicate, or (for whole blocks, ``what``
    ``layer``) dropping every block; ``what`` names the unit in the messages (``attn``, ``mlp``).
    """
    raw = list(drop)
    out: list[int] = []
    for index in raw:
        if not isinstance(index, int) or isinstance(index, bool):
            raise ValueError(f"{what} index {index!r} is not an int")
        if not -n_layers <= index < n_layers:
            raise ValueError(
                f"{what} index {index} is out of range; the model has {n_layers} blocks, "
                f"so indices must lie in [{-n_layers}, {n_layers - 1}]"
            )
        out.append(index % n_layers)
    if len(set(out)) != len(out):
        raise ValueError(f"duplicate {what} indices in {raw!r} (after resolving negatives: {out})")
    if what == "layer" and len(out) == n_layers:
        raise ValueError(f"dropping {raw!r} would remove all {n_layers} blocks; keep at least one")
    return tuple(sorted(out))


def check_units(dropped: Sequence[int], attn: Sequence[int], mlp: Sequence[int]) -> None:
    """A block is removed whole (``drop``) or by its branches, never both ways at once."""
    for unit, given in (("attn", attn), ("mlp", mlp)):
        clash = sorted(set(dropped) & set(given))
        if clash:
            raise ValueError(f"{unit} {clash} also listed in drop: a removed block has no {unit} to remove")
    both = sorted(set(attn) & set(mlp))
    if both:
        raise ValueError(f"attn and mlp {both} together remove the whole block; list {both} in drop instead")
