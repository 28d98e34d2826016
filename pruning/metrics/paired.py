"""Paired intervals: a variant against the unpruned model, scored on the same windows.

Both were scored on the same tokens, so their difference is measured far more precisely than
either perplexity: most of a window's difficulty is shared. Definitions, per window w of n:
``D_w = NLL_variant(w) - NLL_base(w)`` (sums over the window's scored positions) and ``N_w`` its
scored tokens; the mean NLL difference is the ratio ``r = sum D / sum N`` and the perplexity
change ``100 (exp(r) - 1)`` percent.

Interval methods (each a 95% interval of the change). The reports use ``window_t``; how often
each covers the corpus-wide change, on the windows the default run reads, is measured in
``docs/results/paired-coverage``:
- ``window_t``: the t interval of ``r`` over windows (``pruning.metrics.intervals.ratio_t`` of
  the ``D_w``), ``r +- t(n-1) se`` with ``se = sqrt(n / (n - 1) * sum (D_w - r N_w)^2) / sum N``;
- ``window_bootstrap``: the percentile bootstrap of ``r`` over whole windows (2,000 resamples);
- ``marginal``: for comparison only, the variant's own perplexity interval
  (``pruning.metrics.perplexity.ppl_interval``) divided by the unpruned model's perplexity,
  which ignores the pairing.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from pruning.metrics.intervals import ratio_t
from pruning.metrics.perplexity import ppl_interval

BOOTSTRAP_RESAMPLES = 2000  # window_bootstrap's resamples (seed 0)

Interval = tuple[float, float]  # a 95% interval of the perplexity change, in percent


def change_pct(diff: Sequence[float], tokens: Sequence[int]) -> float:
    """The perplexity change in percent from per-window NLL differences and scored tokens."""
    return 100.0 * math.expm1(math.fsum(diff) / sum(tokens))


def window_t(diff: Sequence[float], tokens: Sequence[int]) -> Interval:
    """The ``window_t`` interval (see the module docstring); needs two windows at least."""
    if len(diff) < 2:
        raise ValueError(f"a paired interval needs at least 2 windows; got {len(diff)}")
    return _t_interval(diff, tokens, 0.05)


def window_bootstrap(diff: Sequence[float], tokens: Sequence[int]) -> Interval:
    """The ``window_bootstrap`` interval: percentiles of ``r`` over windows resampled (seed 0)."""
    d, n = np.asarray(diff, dtype=np.float64), np.asarray(tokens, dtype=np.float64)
    picks = np.random.default_rng(0).integers(0, d.size, size=(BOOTSTRAP_RESAMPLES, d.size))
    low, high = np.percentile(d[picks].sum(1) / n[picks].sum(1), [2.5, 97.5])
    return 100.0 * math.expm1(float(low)), 100.0 * math.expm1(float(high))


def marginal(variant_nll: Sequence[float], base_nll: Sequence[float], tokens: Sequence[int]) -> Interval:
    """The ``marginal`` interval: the variant's perplexity interval over the base's perplexity."""
    low, high = ppl_interval(variant_nll, tokens)
    base = math.exp(math.fsum(base_nll) / sum(tokens))
    return 100.0 * (low / base - 1.0), 100.0 * (high / base - 1.0)


PairedMethod = Callable[[Sequence[float], Sequence[int]], Interval]
METHODS: dict[str, PairedMethod] = {"window_t": window_t, "window_bootstrap": window_bootstrap}


def same_as_best(
    window_nll: dict[str, Sequence[float]], tokens: Sequence[int], sizes: dict[str, int]
) -> dict[str, bool]:
    """For each number of removed units, which variants are statistically indistinguishable from
    the best one (lowest perplexity) of that size: the paired ``window_t`` interval of the
    variant's change against the best's, at the Bonferroni level 1 - 0.05 / m for the m other
    variants of that size, holds 0. The best is marked too; a size with one variant marks it."""
    out: dict[str, bool] = {}
    for size in sorted(set(sizes.values())):
        group = [v for v, k in sizes.items() if k == size]
        best = min(group, key=lambda v: (math.fsum(window_nll[v]), v))
        others = [v for v in group if v != best]
        out[best] = True
        for v in others:
            diff = [a - b for a, b in zip(window_nll[v], window_nll[best], strict=True)]
            low, high = _t_interval(diff, tokens, 0.05 / len(others))
            out[v] = low <= 0.0 <= high
    return out


def _t_interval(diff: Sequence[float], tokens: Sequence[int], alpha: float) -> Interval:
    """``window_t`` at level 1 - ``alpha``, as a change in percent."""
    low, high = ratio_t(diff, tokens, alpha)
    return 100.0 * math.expm1(low), 100.0 * math.expm1(high)
