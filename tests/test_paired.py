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
