from __future__ import annotations

from pruning.engine.schedule import plan_schedule
from pruning.models.variant import BASE, Variant


def test_sequential_schedule_resumes_each_variant_after_its_dropped_block():
    variants = [BASE] + [Variant((i,)) for i in range(4)]
    schedule = plan_schedule(variants, 4)
    steps = {s.variant: s for s in schedule.steps}
    assert schedule.steps[0].variant == BASE and schedule.steps[0].run == (0, 1, 2, 3)
    assert steps[Variant((2,))].resume == (0, 1) and steps[Variant((2,))].run == (3,)
    assert steps[Variant((3,))].resume == (0, 1, 2) and steps[Variant((3,))].run == ()
    assert steps[Variant((0,))].resume == () and steps[Variant((0,))].run == (1, 2, 3)


def test_pairs_share_deeper_prefixes_than_the_unpruned_model():
    variants = [Variant((0, 2)), Variant((0, 3))]  # kept (1,3) and (1,2): both start at block 1
    schedule = plan_schedule(variants, 4)
    later = schedule.steps[2]
    assert later.resume == (1,)  # the state after block 1 (with block 0 removed) was captured


def test_every_cached_state_is_evicted_by_the_end():
    variants = [Variant((i, j)) for i in range(6) for j in range(i + 1, 6)]
    schedule = plan_schedule(variants, 6)
    cached, evicted = set(), set()
    for step in schedule.steps:
        for j in step.capture:
            cached.add(step.resume + step.run[: j + 1])
        evicted.update(step.evict)
    assert cached == evicted and schedule.peak_states <= 6


def test_naive_schedule_runs_every_kept_block():
    variants = [BASE, Variant((1,)), Variant((0, 3))]
    schedule = plan_schedule(variants, 4, share=False)
    assert [len(s.run) for s in schedule.steps] == [4, 3, 2]  # base, kept (0,2,3), kept (1,2)
    assert all(not s.resume and not s.capture for s in schedule.steps)


def test_without_a_reference_base_runs_only_the_prefixes_it_shares_unscored():
    variants = [Variant(attn=(2,)), Variant(attn=(2, 3)), Variant((1,), "", (2,))]  # all keep blocks 0..
    schedule = plan_schedule(variants, 6, reference=False)
    base = schedule.steps[0]
    assert base.variant == BASE and not base.scored
    assert base.run == (0, 1)  # the deepest prefix a candidate shares: blocks 0 and 1
    assert [s.variant for s in schedule.steps[1:]] == sorted(variants, key=lambda v: v.kept(6))
    assert schedule.head_passes == 3  # the candidates only
    full = plan_schedule(variants, 6)
    assert full.steps[0].run == (0, 1, 2, 3, 4, 5) and full.head_passes == 4


def test_without_a_reference_base_is_skipped_when_it_shares_nothing():
    variants = [Variant((0,)), Variant((0, 3))]  # both lose block 0
    schedule = plan_schedule(variants, 4, reference=False)
    assert BASE not in [s.variant for s in schedule.steps] and schedule.head_passes == 2


def test_base_among_the_variants_is_scored_whatever_the_reference_flag():
    schedule = plan_schedule([BASE, Variant((2,))], 4, reference=False)
    assert schedule.steps[0].scored and schedule.steps[0].run == (0, 1, 2, 3)
