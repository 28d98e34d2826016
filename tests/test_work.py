"""Work classes: which variants run the same computation (``pruning.models.work``)."""

from __future__ import annotations

from pruning.models.loading import load_model
from pruning.models.variant import Variant, from_units
from pruning.models.work import block_kinds, work_class


def test_single_removals_of_alike_blocks_share_one_class_and_healing_keeps_it():
    kinds = block_kinds(load_model("random:tiny-llama").model)
    assert set(kinds) == {"block"}
    n = len(kinds)
    singles = {work_class(Variant((i,)), kinds) for i in range(n)}
    assert singles == {f"{n - 1}× block"}
    assert work_class(Variant((1,), "lora"), kinds) == work_class(Variant((1,)), kinds)
    assert work_class(Variant(()), kinds) == f"{n}× block"
    assert work_class(Variant((0, 1)), kinds) != work_class(Variant((0,)), kinds)


def test_branches_and_layer_types_make_their_own_classes():
    kinds = block_kinds(load_model("random:tiny-llama").model)
    n = len(kinds)
    attn, mlp = work_class(from_units(["attn1"]), kinds), work_class(from_units(["mlp1"]), kinds)
    assert attn == f"{n - 1}× block, 1× block without attn" and attn != mlp
    assert work_class(from_units(["attn0"]), kinds) == attn  # which block does not matter
    gemma = block_kinds(load_model("random:tiny-gemma3").model)  # sliding and full attention
    assert set(gemma) == {"sliding_attention", "full_attention"}
    sliding, full = gemma.index("sliding_attention"), gemma.index("full_attention")
    assert work_class(Variant((sliding,)), gemma) != work_class(Variant((full,)), gemma)
