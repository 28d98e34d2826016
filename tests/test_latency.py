"""The interleaved campaign's analysis, on synthetic timings with known truth."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pruning.metrics.latency import (
    Slot,
    between,
    changes,
    contrasts,
    disagrees,
    estimates,
    fit_depth,
    median_half_width,
    shift,
)
from pruning.metrics.timing import (
    CONFIRM_REFERENCE,
    CONFIRM_ROUNDS,
    CampaignSettings,
    reference_slots,
    round_order,
    run_campaign,
)
from pruning.reporting.tables import speed_lines, speed_meta
from pruning.results.gates import Thresholds, check_baseline
from pruning.results.rows import Row, with_changes


def synthetic(
    truth: dict[str, float],
    rounds: int,
    seed: int,
    noise: float = 0.03,
    classes: dict[str, str] | None = None,
) -> list[Slot]:
    """Slots in the campaign's order with a machine level that wanders by tens of percent,
    bursts of interference (only ever slower), and ``noise`` of fast jitter."""
    rng = np.random.default_rng(seed)
    slots, level = [], 0.0
    for r in range(rounds):
        for name in round_order(list(truth), "base", r, seed, classes):
            level = 0.9 * level + rng.normal(0.0, 0.05)  # slow drift, seconds long
            burst = rng.exponential(0.15) if rng.random() < 0.2 else 0.0
            seconds = 0.1 * truth[name] * math.exp(abs(level) + burst + rng.normal(0.0, noise))
            slots.append(Slot(r, name, seconds))
    return slots


TRUTH = {"base": 1.0, **{f"drop[{i}]": 29 / 30 for i in range(12)}, "drop[3,4]": 28 / 30, "slow": 1.2}


def test_changes_recover_known_ratios_through_drift_and_bursts():
    found = changes(synthetic(TRUTH, 12, seed=1), "base")
    assert found["base"].ratio == 1.0
    for name, truth in TRUTH.items():
        if name == "base":
            continue
        change = found[name]
        assert abs(change.ratio / truth - 1) < 0.05, name
        assert change.low < change.ratio < change.high
    assert found["slow"].significant and found["slow"].low > 1.1
    covered = [found[n].low <= t <= found[n].high for n, t in TRUTH.items() if n != "base"]
    assert sum(covered) >= len(covered) - 1
    assert median_half_width(found, "base") < 6.0


def test_intervals_cover_the_truth_about_95_percent_of_the_time():
    hits = total = 0
    for seed in range(30):
        found = changes(synthetic(TRUTH, 6, seed=seed), "base")
        for name, truth in TRUTH.items():
            if name != "base":
                total += 1
                hits += found[name].low <= truth <= found[name].high
    assert hits / total > 0.88, hits / total


def test_contrasts_remove_a_level_shift_that_raw_times_keep():
    truth = {"base": 1.0, "a": 1.0}
    slots = []
    for r in range(8):  # the machine gets 50% slower halfway through
        for name in round_order(list(truth), "base", r, 0):
            slots.append(Slot(r, name, 0.1 * (1.5 if r >= 4 else 1.0)))
    d = contrasts(slots, "base")
    assert max(abs(x) for x in d[:3] + d[-3:]) < 1e-12  # far from the shift: no residue


def test_hodges_lehmann_shift_and_its_interval():
    mid, low, high = shift([2.0, 3.0, 4.0], [0.0, 1.0])
    assert mid == 2.5  # the median of the pairwise differences 1, 2, 2, 3, 3, 4
    assert low <= mid <= high
    assert shift([5.0] * 6, [5.0] * 6) == (0.0, 0.0, 0.0)


def test_round_order_times_every_variant_and_the_reference_more_often():
    names = ["base", *[f"v{i}" for i in range(30)]]
    order = round_order(names, "base", 0, seed=0)
    assert sorted(n for n in order if n != "base") == sorted(names[1:])
    assert order.count("base") == 6  # ceil(sqrt(30))
    assert order != round_order(names, "base", 1, seed=0)  # a fresh order each round
    assert order == round_order(names, "base", 0, seed=0)  # and a reproducible one


def test_depth_fit_and_the_variants_that_leave_it():
    latency = {"base": 130.0, "a": 126.0, "b": 122.0, "c": 118.0}
    kept = {"base": 30, "a": 29, "b": 28, "c": 27}
    fit = fit_depth(latency, kept)
    assert fit is not None and fit.r2 == pytest.approx(1.0)
    assert fit.per_block_ms == pytest.approx(4.0) and fit.overhead_ms == pytest.approx(10.0)
    assert fit_depth({"base": 1.0, "a": 1.0}, {"base": 30, "a": 30}) is None  # one depth: no fit
    expected = fit.at(29) / fit.at(30)
    assert not disagrees((expected - 0.01, expected + 0.01), fit, 29, 30)
    assert disagrees((1.01, 1.05), fit, 29, 30)  # slower than 30 blocks while running 29


def _rows(found):
    base = Row(
        "base", (), 30, 10.0, (9.0, 11.0), 1, 0.0, 1.0, 10, speed_ratio=1.0, speed_ratio_ci95=(1.0, 1.0)
    )
    rows = [base]
    for name, change in found.items():
        if name != "base":
            rows.append(
                Row(name, (1,), 29, 11.0, (10.0, 12.0), 1, 0.1, 0.9, 10,
                    speed_ratio=change.ratio, speed_ratio_ci95=(change.low, change.high))
            )  # fmt: skip
    return with_changes(rows)


def test_speed_gate_on_intervals_noise_never_fails_and_a_real_slowdown_does():
    truth = {"base": 1.0, **{f"drop[{i}]": 29 / 30 for i in range(10)}}
    thresholds = Thresholds(speedup_fail_pct=10.0)
    baseline = _rows(changes(synthetic(truth, 5, seed=100), "base"))
    for seed in range(20):  # twenty noisy reruns of the same code: never a failure
        now = _rows(changes(synthetic(truth, 5, seed=seed), "base"))
        assert [f for f in check_baseline(now, baseline, thresholds) if f.metric.startswith("speedup")] == []
    slowed = {**truth, "drop[3]": 1.5 * 29 / 30}  # one variant 50% slower than it was
    failures = check_baseline(_rows(changes(synthetic(slowed, 5, seed=7), "base")), baseline, thresholds)
    assert [(f.variant, f.metric) for f in failures] == [("drop[3]", "speedup vs unpruned")]
    assert "between intervals" in failures[0].threshold


def test_speed_gate_on_pooled_intervals_noise_never_fails_and_a_real_slowdown_does():
    truth = {"base": 1.0, **{f"drop[{i}]": 29 / 30 for i in range(10)}}
    classes = {name: "29× block" for name in truth if name != "base"}
    thresholds = Thresholds(speedup_fail_pct=10.0)

    def speed_failures(timings: dict[str, float], seed: int) -> list[tuple[str, str]]:
        found = estimates(synthetic(timings, 4, seed=seed, classes=classes), "base", classes)
        now = _rows({name: e.change for name, e in found.items()})
        return [
            (f.variant, f.metric) for f in check_baseline(now, baseline, thresholds) if "speedup" in f.metric
        ]

    found = estimates(synthetic(truth, 4, seed=100, classes=classes), "base", classes)
    baseline = _rows({name: e.change for name, e in found.items()})
    assert all(speed_failures(truth, seed) == [] for seed in range(20))  # noise never fails
    slowed = {**truth, "drop[3]": 1.5 * 29 / 30}  # one variant 50% slower: it leaves its class
    assert speed_failures(slowed, 7) == [("drop[3]", "speedup vs unpruned")]


SINGLES = {"base": 1.0, **{f"drop[{i}]": 29 / 30 for i in range(30)}}
ONE_CLASS = {name: "29× block" for name in SINGLES if name != "base"}


def test_a_work_class_pools_its_slots_into_one_narrow_interval_that_covers_the_truth():
    hits = total = 0
    widths, own_widths = [], []
    for seed in range(20):
        found = estimates(synthetic(SINGLES, 3, seed=seed, classes=ONE_CLASS), "base", ONE_CLASS)
        inside = [e for name, e in found.items() if name != "base" and not e.off_class]
        assert len({e.change for e in inside}) == 1  # every variant in the pool reports one change
        assert all(e.pooled == len(inside) for e in inside)
        change = inside[0].change
        total += 1
        hits += change.low <= 29 / 30 <= change.high
        widths.append(change.half_width_pp)
        own_widths += [e.own.half_width_pp for name, e in found.items() if name != "base"]
    assert hits / total >= 0.85, hits / total
    assert np.median(widths) < np.median(own_widths) / 3  # 30 variants x 3 slots against 1 x 3


def test_a_variant_slower_than_its_class_leaves_the_pool_and_reports_its_own_interval():
    slowed = {**SINGLES, "drop[7]": 1.25 * 29 / 30}  # same work, but 25% slower (not physics)
    found = estimates(synthetic(slowed, 4, seed=3, classes=ONE_CLASS), "base", ONE_CLASS)
    assert found["drop[7]"].off_class and found["drop[7]"].pooled == 1
    assert found["drop[7]"].change == found["drop[7]"].own and found["drop[7]"].change.low > 1.1
    pool = found["drop[0]"]
    assert not pool.off_class and pool.change.low <= 29 / 30 <= pool.change.high  # drop[7] left out


def test_without_classes_every_variant_is_its_own_and_estimates_equal_changes():
    slots = synthetic(TRUTH, 4, seed=2)
    assert {n: e.change for n, e in estimates(slots, "base", {}).items()} == changes(slots, "base")
    assert all(e.pooled == 1 and not e.off_class for e in estimates(slots, "base", {}).values())


def test_reference_slots_follow_the_square_root_rule_over_pooled_comparisons():
    assert reference_slots(30) == 6  # 30 variants, each its own class: ceil(sqrt(30))
    assert reference_slots(30, 1) == 30  # one pooled class of 30: as many as the class
    assert reference_slots(60, 2) == 43  # attention and MLP singles: ceil(60 / sqrt(2))
    order = round_order(list(SINGLES), "base", 0, 0, ONE_CLASS)
    assert order.count("base") == 30 and len(order) == 60


def test_two_variants_compared_directly_recover_their_ratio_and_beat_comparing_two_intervals():
    truth = {"base": 1.0, "a": 0.90, "b": 0.95, "c": 0.95}
    hits, tighter = 0, 0
    for seed in range(20):
        slots = synthetic(truth, 20, seed=seed)
        direct = between(slots, "base", {}, "a", "b")
        hits += direct.low <= 0.90 / 0.95 <= direct.high
        found = changes(slots, "base")
        # two intervals against the reference separate only when the gap exceeds both half-widths
        tighter += direct.half_width_pp < found["a"].half_width_pp + found["b"].half_width_pp
    assert hits >= 17 and tighter == 20
    assert between(synthetic(truth, 20, seed=1), "base", {}, "b", "c").low < 1.0  # same truth


def _campaign(slow_calls: dict[str, int], always_slow: tuple[str, ...] = ()):
    """A 3-round campaign over one work class of 12 variants on synthetic timers (1% jitter):
    ``slow_calls`` variants are 20% slower on their first N calls only (interference), the
    ``always_slow`` ones on every call (a real slowdown)."""
    rng = np.random.default_rng(0)
    calls: dict[str, int] = {}
    names = ["base", *[f"drop[{i}]" for i in range(12)]]

    def measure(name):
        def run():
            calls[name] = calls.get(name, 0) + 1
            hit = calls[name] <= slow_calls.get(name, 0) or name in always_slow
            return 0.1 * (1.0 if name == "base" else 29 / 30) * (1.2 if hit else 1.0) * rng.lognormal(0, 0.01)

        return run

    classes = {n: "29× block" for n in names[1:]}
    settings = CampaignSettings(min_rounds=3, max_rounds=3, budget_s=1e9)
    return run_campaign("prefill", {n: measure(n) for n in names}, "base", settings, classes=classes)


def test_a_variant_flagged_off_its_class_by_interference_is_re_timed_back_into_it():
    found = _campaign({"drop[5]": 3})  # interference on all three of its slots in the rounds
    first = estimates([s for s in found.slots if s.round < 3], "base", found.classes)
    assert first["drop[5]"].off_class  # what the rounds alone would have reported
    assert found.retimed == ("drop[5]",) and found.rounds == 3
    assert len(found.slots) == 3 * (12 + reference_slots(12, 1)) + CONFIRM_ROUNDS * (1 + CONFIRM_REFERENCE)
    assert not found.estimates["drop[5]"].off_class
    assert found.estimates["drop[5]"].change == found.estimates["drop[0]"].change  # pooled again
    meta = speed_meta({"prefill": found}, None)["prefill"]
    assert meta["retimed"] == ["drop[5]"] and len(meta["slot_times"]) == len(found.slots)
    assert "back in their class: drop[5]" in speed_lines({"prefill": found}, None, [])[0]


def test_a_really_slower_variant_stays_off_its_class_after_re_timing():
    found = _campaign({}, always_slow=("drop[5]",))
    assert found.retimed == ("drop[5]",)
    assert found.estimates["drop[5]"].off_class and found.estimates["drop[5]"].change.low > 1.1
    assert not _campaign({}).retimed  # nothing flagged, nothing re-timed


def test_a_noise_free_campaign_reads_its_exact_ratio_however_its_slots_cluster():
    """5 ms for the unpruned model, 4 ms for four variants of one class, in an order where the
    unpruned model's slots bunch together (as a campaign's confirmation rounds make them): the
    level and the costs must converge to the ratio 0.8 (four fixed rounds read 0.811)."""
    order = list("bacbbbdedbbabbecdbebbbdebbbb")  # one slot each, in time order
    times = {"b": 5e-3, "a": 4e-3, "c": 4e-3, "d": 4e-3, "e": 4e-3}
    slots = [Slot(i // 7, name, times[name]) for i, name in enumerate(order)]
    found = estimates(slots, "b", dict.fromkeys("acde", "3 blocks"))
    assert all(found[n].change.ratio == pytest.approx(0.8, rel=1e-9) for n in "acde")
