"""The pruned-variant value type: which blocks a variant removes, and its stable id.

It lives at the bottom, next to surgery, because the engine, the store, the searches and the
reports all name variants; only the plan grammar that selects them belongs to ``pruning.study``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Variant:
    """A set of removed blocks, sorted and 0-based, and the healing applied after removal.

    ``heal`` names a method of ``pruning.healing`` (``""``: none); a healed variant is measured
    against its unhealed one (``unhealed``).
    """

    drop: tuple[int, ...] = ()
    heal: str = ""

    @property
    def id(self) -> str:
        """``base``, ``drop[1,3]`` or ``drop[1,3]+lora``: stable, readable, a valid pytest id."""
        plain = "base" if not self.drop else f"drop[{','.join(map(str, self.drop))}]"
        return f"{plain}+{self.heal}" if self.heal else plain

    @property
    def unhealed(self) -> Variant:
        """The same removal without healing."""
        return Variant(self.drop)

    def kept(self, n_layers: int) -> tuple[int, ...]:
        """The indices of the blocks this variant keeps."""
        return tuple(i for i in range(n_layers) if i not in self.drop)


BASE = Variant()


def last_blocks(n: int, n_layers: int) -> tuple[int, ...]:
    """The last ``n`` blocks but the final one (for 30 blocks and n=2: blocks 27 and 28)."""
    return tuple(range(n_layers - 1 - n, n_layers - 1))
