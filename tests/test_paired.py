"""Paired intervals of the perplexity change: coverage where the truth is known."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pruning.metrics.paired import change_pct, window_bootstrap, window_t


def test_the_change_is_exp_of_the_mean_nll_difference():
    assert change_pct([511 * 0.1] * 8, [511] * 8) == pytest.approx(100 * (math.exp(0.1) - 1))


@pytest.mark.parametrize(("method", "low", "high"), [(window_t, 0.93, 0.97), (window_bootstrap, 0.80, 0.93)])
def test_paired_intervals_cover_a_known_change_at_their_rate_over_eight_windows(method, low, high):
    """Per-window mean NLL differences drawn from N(0.05, 0.02^2) on 8 windows of 511 tokens: the
    true change is 100 (e^0.05 - 1). The t interval covers it 93-97% of 1000 draws; the percentile
    bootstrap of 8 windows runs well under 95% (the reason it is not the default)."""
    truth = 100 * math.expm1(0.05)
    covered = 0
    for seed in range(1000):
        diff = 511 * np.random.default_rng(seed).normal(0.05, 0.02, size=8)
        lo, hi = method(diff.tolist(), [511] * 8)
        covered += lo <= truth <= hi
    assert low <= covered / 1000 <= high


def test_rank_groups_join_identical_variants_and_separate_clearly_worse_ones():
    from pruning.metrics.paired import same_as_best

    rng = np.random.default_rng(0)
    base = 511 * rng.normal(3.0, 0.3, size=8)  # (8,) per-window NLL sums

    def variant(shift: float) -> list[float]:  # base + a shift per token, with per-window noise
        return (base + 511 * (shift + rng.normal(0, 0.005, size=8))).tolist()

    a = variant(0.10)
    nll = {"a": a, "b": list(a), "c": variant(0.30), "d": variant(0.50)}  # b: a's identical twin
    marks = same_as_best(nll, [511] * 8, {"a": 1, "b": 1, "c": 1, "d": 2})
    assert marks == {"a": True, "b": True, "c": False, "d": True}  # d: the only variant of its size


def test_rows_carry_paired_intervals_and_rank_marks():
    """Base and three single removals on 8 windows: the paired change interval holds the point
    change and is far narrower than the marginal one; KL and top-1 intervals hold their means."""
    from pruning.metrics.sums import VariantSums, WindowSums
    from pruning.models.variant import BASE, Variant
    from pruning.results.rows import quality_row, with_changes

    rng = np.random.default_rng(1)
    base = 511 * rng.normal(3.0, 0.3, size=8)

    def sums(shift: float, kl: float) -> VariantSums:
        nll = base + 511 * (shift + rng.normal(0, 0.01, size=8))
        return VariantSums.of([WindowSums(float(n), 511 * kl, 400, 511) for n in nll])

    given = {BASE: sums(0.0, 0.0), Variant((1,)): sums(0.1, 0.2), Variant((2,)): sums(0.1, 0.2)}
    given[Variant((3,))] = sums(0.4, 0.5)
    rows = {r.id: r for r in with_changes(quality_row(v, s, 4, 100) for v, s in given.items())}
    one = rows["drop[1]"]
    assert one.ppl_change_ci95[0] < one.ppl_change_pct < one.ppl_change_ci95[1]
    paired_width = one.ppl_change_ci95[1] - one.ppl_change_ci95[0]
    marginal_width = 100 * (one.ppl_ci95[1] - one.ppl_ci95[0]) / rows["base"].ppl
    assert paired_width < marginal_width / 5
    assert one.kl_ci95 == pytest.approx((0.2, 0.2)) and one.top1_ci95 == pytest.approx((400 / 511, 400 / 511))
    assert rows["drop[3]"].same_as_best is False and rows["base"].same_as_best is None
    assert {rows["drop[1]"].same_as_best, rows["drop[2]"].same_as_best} == {True}


def test_the_summary_names_the_best_or_the_removals_tied_with_it():
    from dataclasses import replace

    from pruning.reporting.tables import rank_lines
    from pruning.results.rows import Row

    def row(i: int, ppl: float, same: bool | None) -> Row:
        return replace(Row(f"drop[{i}]", (i,), 3, ppl, (ppl, ppl), 1, 0.1, 0.9, 511), same_as_best=same)

    tied = [row(17, 33.7, True), row(14, 34.1, True), row(12, 35.0, True), row(0, 9e4, False)]
    assert rank_lines(tied) == [
        "removals of 1 unit indistinguishable from the best (paired): drop[17], drop[14], drop[12]"
    ]
    clear = [row(17, 33.7, True), row(14, 40.0, False)]
    assert rank_lines(clear) == ["best removal of 1 unit: drop[17], clear of the other 1 (paired)"]
