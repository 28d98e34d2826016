"""The interleaved campaign's analysis, on synthetic timings with known truth."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pruning.metrics.latency import Slot, changes, contrasts, disagrees, fit_depth, median_half_width, shift
from pruning.metrics.timing import round_order
from pruning.reporting.gates import Thresholds, check_baseline
from pruning.reporting.rows import Row, with_changes


def synthetic(truth: dict[str, float], rounds: int, seed: int, noise: float = 0.03) -> list[Slot]:
    """Slots in the campaign's order with a machine level that wanders by tens of percent,
    bursts of interference (only ever slower), and ``noise`` of fast jitter."""
    rng = np.random.default_rng(seed)
    slots, level = [], 0.0
    for r in range(rounds):
        for name in round_order(list(truth), "base", r, seed):
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
