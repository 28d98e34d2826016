"""Partitions keep the prefix sharing: whole subtrees off the unpruned trunk, balanced by cost."""

from __future__ import annotations

import pytest

from pruning.engine.partition import branch_point, partition, schedule_cost, subtrees
from pruning.models.variant import BASE, Variant
from pruning.plugin.scheduler import variant_id
from pruning.study.plan import expand_plan, parse_plan

SEQUENTIAL = expand_plan(parse_plan("sequential"), 30)


@pytest.mark.parametrize("parts", [1, 2, 3, 5])
def test_parts_cover_every_variant_once_with_base_first(parts):
    groups = partition(SEQUENTIAL, 30, parts, 3.5)
    assert len(groups) == parts and groups[0][0] == BASE
    assert sorted(v for g in groups for v in g) == sorted(SEQUENTIAL)


def test_two_parts_cost_at_most_one_extra_unpruned_pass_and_are_balanced():
    groups = partition(SEQUENTIAL, 30, 2, 3.5)
    serial = schedule_cost(SEQUENTIAL, 30, 3.5)
    costs = [schedule_cost(g, 30, 3.5) for g in groups]
    assert sum(costs) <= serial + 30 + 3.5  # each extra part reruns the unpruned model once
    assert sum(costs) < schedule_cost(SEQUENTIAL, 30, 3.5, share=False)  # still far below naive
    # single removals cost 29 - k blocks and a head each: a contiguous cut of the walk could not
    # do better than 325 vs 350 (with base) at weight 8; whole subtrees dealt largest first can
    assert max(costs) - min(costs) <= 1.0
    costs8 = [schedule_cost(g, 30, 8.0) for g in partition(SEQUENTIAL, 30, 2, 8.0)]
    assert max(costs8) - min(costs8) <= 1.0


def test_a_subtree_off_the_unpruned_trunk_stays_on_one_part():
    plan = expand_plan(parse_plan("drop:3;3,4;3,5;3,4,9;7;7,8;1,2;20"), 30)
    trees = subtrees(plan, 30)
    # drop[3], drop[3,5] and drop[3,4,9] leave the trunk at block 3 and go on with block 4 (or 5
    # after 4 is gone): three subtrees there, keyed by the kept prefix up to the branch
    assert {k[-1]: [v.id for v in m] for k, m in trees.items()} == {
        4: ["drop[3]", "drop[3,5]"],
        5: ["drop[3,4]", "drop[3,4,9]"],
        8: ["drop[7]"],
        9: ["drop[7,8]"],
        3: ["drop[1,2]"],
        21: ["drop[20]"],
    }
    for parts in (2, 3, 4):
        groups = partition(plan, 30, parts, 3.5)
        for members in trees.values():
            assert sum(any(v in g for v in members) for g in groups) == 1
        for g in groups:  # each part in prefix-tree order, the unpruned model first
            rest = [v for v in g if v != BASE]
            assert rest == sorted(rest, key=lambda v: v.kept(30))


def test_the_branch_point_is_the_kept_prefix_through_the_first_difference():
    trunk = tuple(range(6))
    assert branch_point((0, 1, 3, 4, 5), trunk) == (0, 1, 3)
    assert branch_point((0, 1, 2, 3, 4), trunk) == (0, 1, 2, 3, 4)  # the last block removed
    assert branch_point((1, 2, 3, 4, 5), trunk) == (1,)


def test_the_deal_is_the_same_in_every_process():
    shuffled = list(reversed(SEQUENTIAL))
    assert partition(shuffled, 30, 3, 3.5) == partition(SEQUENTIAL, 30, 3, 3.5)


def test_bad_part_counts_are_refused():
    with pytest.raises(ValueError, match="parts 0 must be"):
        partition(SEQUENTIAL, 30, 0, 3.5)


def test_the_scheduler_reads_the_variant_id_from_a_node_id():
    assert variant_id("benchmarks/test_pruning.py::test_quality[drop[1,3]]") == "drop[1,3]"
    assert variant_id("test_pruning.py::test_prefill[base]") == "base"
    assert variant_id("test_x.py::test_plain") is None


def test_variant_ids_are_told_from_other_parameter_ids():
    for found in ("base", "drop[3]", "drop[1,3]", "drop[attn5,mlp7,12]", "drop[14]+lora", "base+linear"):
        assert Variant.looks_like_id(found), found
    for other in ("a", "3", "basement", "drop[]", "drop[x]", "drop[1,3", "x-drop[1]", "drop[1]+"):
        assert not Variant.looks_like_id(other), other
    variants = [Variant(), Variant((3,)), Variant((1, 3), "lora"), Variant((12,), attn=(5,), mlp=(7,))]
    assert all(Variant.looks_like_id(v.id) for v in variants)
    assert Variant((1, 3)).id == "drop[1,3]"
