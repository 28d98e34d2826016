"""Work classes: which variants run the same computation, so their speed can be pooled.

Two variants are in one *work class* when they keep the same number of blocks of each *kind*
whole, and the same number without attention and without MLP. A block's kind is its
attention type where the config names one per layer (Gemma 3's ``sliding_attention`` and
``full_attention``) and its parameter shapes where blocks differ in them. Such variants run
the same kernels on the same shapes in the same number; only weight values and addresses
differ, so their latencies differ only by effects a timing campaign tests for
(``pruning.metrics.latency.estimates``: a variant off its class is reported on its own).
Healing keeps the shapes (``linear`` folds its map into a kept weight, ``lora`` is merged), so a
healed variant shares its unhealed variant's class.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from torch import nn

from pruning.models.surgery import get_blocks
from pruning.models.variant import Variant, decode_kept

WITHOUT = {"": "", "attn": " without attn", "mlp": " without mlp"}


def block_kinds(model: nn.Module) -> tuple[str, ...]:
    """Each block's kind: ``block`` for a model of alike blocks; otherwise its config's layer type
    and, where shapes differ, which parameter-shape group it belongs to (``shapes1``)."""
    blocks = get_blocks(model)
    types = list(getattr(model.config, "layer_types", None) or ["block"] * len(blocks))
    shapes = [tuple((n, tuple(p.shape)) for n, p in b.named_parameters()) for b in blocks]
    groups = list(dict.fromkeys(shapes))
    if len(groups) == 1:
        return tuple(types)
    return tuple(f"{t} shapes{groups.index(s)}" for t, s in zip(types, shapes, strict=True))


def work_class(variant: Variant, kinds: Sequence[str]) -> str:
    """The variant's work class as a readable label: ``29× block``, ``28× block, 1× block without
    attn``, ``12× sliding_attention, 3× full_attention``. Healing does not change it."""
    kept = Counter(
        kinds[block] + WITHOUT[removed] for block, removed in map(decode_kept, variant.kept(len(kinds)))
    )
    return ", ".join(f"{count}× {kind}" for kind, count in sorted(kept.items()))
