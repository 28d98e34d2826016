"""Partitions keep the prefix sharing: contiguous runs of the prefix-tree walk, balanced by cost."""

from __future__ import annotations

import pytest

from pruning.engine.partition import partition, schedule_cost
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
    assert sum(costs) <= 1.1 * serial and max(costs) <= 0.6 * sum(costs)
    assert sum(costs) < schedule_cost(SEQUENTIAL, 30, 3.5, share=False)  # still far below naive


def test_a_part_is_a_contiguous_run_of_the_prefix_tree_walk():
    walk = sorted((v for v in SEQUENTIAL if v != BASE), key=lambda v: v.kept(30))
    groups = partition(SEQUENTIAL, 30, 3, 3.5)
    flat = [v for g in groups for v in g if v != BASE]
    assert flat == walk


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
