from __future__ import annotations

import pytest

from pruning.models.variant import BASE, Variant
from pruning.study.plan import Combos, Explicit, Last, UnitSet, expand_plan, parse_plan, plan_size


def test_ids_are_stable_and_readable():
    assert BASE.id == "base" and Variant((1, 3)).id == "drop[1,3]"


def test_unit_ids_read_in_block_order():
    variant = Variant((12,), "", (5,), (7, 12 - 10))
    assert variant.id == "drop[mlp2,attn5,mlp7,12]" and variant.sublayers == ("mlp2", "attn5", "mlp7")
    assert Variant(attn=(5,)).id == "drop[attn5]" and Variant((1,), "lora").id == "drop[1]+lora"
    assert not Variant(attn=(0,)).is_base and Variant(mlp=(1,)).shares_prefixes
    assert not Variant((1,), "lora").shares_prefixes
    ordered = sorted([Variant(mlp=(2,)), Variant((1,)), Variant(attn=(0,)), BASE], key=lambda v: v.sort_key)
    assert [v.id for v in ordered] == ["base", "drop[attn0]", "drop[1]", "drop[mlp2]"]


def test_unit_spaces_count_branches_and_a_block_losing_both_is_removed_whole():
    from pruning.models.variant import decode_kept, from_units, kept_code, space_names, space_units

    assert space_names("all", 2) == ("attn0", "mlp0", "attn1", "mlp1") and space_names("blocks", 2) == (
        "0",
        "1",
    )
    whole = from_units(["attn3", "mlp3", "attn5"])
    assert whole == Variant((3,), "", (5,)) and whole.id == "drop[3,attn5]"
    assert whole.size("all") == 3 and whole.size("attn") == 2 and whole.size("blocks") == 1
    assert space_units(whole, "mlp") == frozenset({"mlp3"})
    for block, removed in [(0, ""), (0, "attn"), (0, "mlp"), (7, "attn"), (7, "mlp")]:
        assert decode_kept(kept_code(block, removed)) == (block, removed)
    assert Variant((1,), "", (0,), (2,)).kept(3) == (kept_code(0, "attn"), kept_code(2, "mlp"))
    with pytest.raises(ValueError, match="invalid units 'heads'; expected one of blocks, attn, mlp, all"):
        space_names("heads", 2)


def test_sequential_units_plans_and_unit_drop_lists():
    assert [v.id for v in expand_plan(parse_plan("sequential:attn"), 2)] == [
        "base",
        "drop[attn0]",
        "drop[attn1]",
    ]
    assert [v.id for v in expand_plan(parse_plan("sequential:mlp"), 2)] == [
        "base",
        "drop[mlp0]",
        "drop[mlp1]",
    ]
    units = expand_plan(parse_plan("sequential:units"), 30)
    assert len(units) == 61 and plan_size(parse_plan("sequential:units"), 30) == 61
    variants = expand_plan(parse_plan("drop:attn5,mlp-1;12;attn1,3"), 30)
    assert [v.id for v in variants] == ["base", "drop[attn5,mlp29]", "drop[12]", "drop[attn1,3]"]
    with pytest.raises(ValueError, match=r"attn and mlp \[2\] together remove the whole block"):
        expand_plan(parse_plan("drop:attn2,mlp2"), 6)
    with pytest.raises(ValueError, match=r"attn index 6 is out of range"):
        expand_plan(parse_plan("drop:attn6"), 6)


def test_sequential_is_base_plus_each_block():
    variants = expand_plan(parse_plan("sequential"), 30)
    assert len(variants) == 31 and variants[0] == BASE and variants[-1] == Variant((29,))


def test_combos_and_their_size():
    assert plan_size(parse_plan("combos:2"), 30) == 1 + 435
    assert len(expand_plan(parse_plan("combos:3"), 6)) == 1 + 20


def test_explicit_drop_lists_resolve_negative_indices():
    variants = expand_plan(parse_plan("drop:1,3;2,3;-1"), 6)
    assert [v.id for v in variants] == ["base", "drop[1,3]", "drop[2,3]", "drop[5]"]


def test_last_n_drops_the_blocks_before_the_final_one():
    assert expand_plan(parse_plan("last:2"), 30) == [BASE, Variant((27, 28))]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "sequential:2",
        "sequential:heads",
        "combos",
        "combos:0",
        "combos:x",
        "drop:",
        "drop:1,a",
        "drop:attnx",
        "best:3",
    ],
)
def test_bad_plans_quote_the_value(text):
    with pytest.raises(ValueError, match=repr(text).replace("[", r"\[") if "," not in text else "invalid"):
        parse_plan(text)


@pytest.mark.parametrize(
    ("plan", "message"),
    [
        (Combos(6), r"combos:6 removes too many blocks; expected K in \[1, 5\]"),
        (Last(5), r"last:5 removes too many blocks; expected N in \[1, 4\]"),
        (Explicit((UnitSet((7,)),)), r"layer index 7 is out of range"),
    ],
)
def test_plans_that_do_not_fit_the_model(plan, message):
    with pytest.raises(ValueError, match=message):
        expand_plan(plan, 6)
