"""The pruned-variant value type: which blocks a variant removes, and its stable id.

It lives at the bottom, next to surgery, because the engine, the store, the searches and the
reports all name variants; only the plan grammar that selects them belongs to ``pruning.study``.
"""

from __future__ import annotations

from dataclasses import dataclass


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

    @property
    def is_base(self) -> bool:
        """Whether this is the unpruned model."""
        return not self.units

    @property
    def shares_prefixes(self) -> bool:
        """Whether the prefix-shared engine can evaluate it: whole-block removals of the loaded
        weights (a healed model has other weights; a sub-layer variant other blocks)."""
        return not self.heal and not self.attn and not self.mlp

    @property
    def unhealed(self) -> Variant:
        """The same removal without healing."""
        return Variant(self.drop, "", self.attn, self.mlp)

    def kept(self, n_layers: int) -> tuple[int, ...]:
        """The indices of the blocks this variant keeps (whole or in part)."""
        return tuple(i for i in range(n_layers) if i not in self.drop)


BASE = Variant()


def last_blocks(n: int, n_layers: int) -> tuple[int, ...]:
    """The last ``n`` blocks but the final one (for 30 blocks and n=2: blocks 27 and 28)."""
    return tuple(range(n_layers - 1 - n, n_layers - 1))
