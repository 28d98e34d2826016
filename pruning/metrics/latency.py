"""Speed changes with 95% intervals from an interleaved timing campaign, and the depth fit.

Exact definitions (``pruning.metrics.timing`` says how slots are timed):
- a *slot* is one variant timed at one moment; its time ``t`` is the fastest of its
  back-to-back passes, so a burst of interference on this shared machine is dropped rather
  than averaged in (interference only ever adds time);
- the *machine level* ``L_i`` at slot ``i`` is the median of ``log t_j - c_v(j)`` over the
  ``NEIGHBOURS`` slots before and after it in time, where ``c_v`` is variant v's log time
  relative to the unpruned model; ``c`` and ``L`` are found by alternating the two medians
  (``c_unpruned = 0``) until no ``c`` moves by more than ``CONVERGED`` (at most ``ITERATIONS``
  rounds; the alternation converges geometrically, by about a quarter a round). A fixed 4
  rounds left a bias where slots of one variant cluster: a noise-free campaign of 4 ms and
  5 ms slots read a ratio of 0.811 for 0.800. Every variant's slot tells the level, because
  interference lasts seconds while a slot lasts a fraction of one;
- a slot's *contrast* is ``d_i = log t_i - L_i``: its time with the machine's drift removed;
- a slot *hit by interference* is left out: its residual ``d_i`` minus the median contrast of
  its variant exceeds the median residual by more than ``TRIM`` robust standard deviations
  (1.4826 x the median absolute deviation) of all residuals. Interference only ever adds time,
  so the cut is one-sided; it is taken against each variant's own median, so a variant that is
  slower throughout keeps its slots (on recorded campaigns it narrowed the intervals by a
  fifth to a quarter at the same coverage);
- a variant's *ratio* to the unpruned model is ``exp`` of the Hodges-Lehmann shift between
  its contrasts and the unpruned model's (the median of all pairwise differences), and the
  95% interval is the Mann-Whitney interval for that shift (distribution-free; the rank
  critical value from the normal approximation). The contrasts of neighbouring slots share
  neighbours, so the interval is an approximation, checked in tests for coverage;
- *work classes*: variants that run the same work (``pruning.models.work.work_class``: the same
  kept blocks and branches of each kind, so the same kernels on the same shapes; only weight
  values differ) take the same time up to what this test detects: a class's *pooled* ratio is
  the shift of all its variants' contrasts together against the unpruned model's (one
  interval from all those slots), and each variant's *own* ratio from its own slots alone. A
  variant is *off its class* when its own interval at the Bonferroni level 1 - 0.05/n (n
  variants in the class) excludes the pooled ratio, so that chance marks one in about 5% of
  classes, not 5% of variants; it is then reported by its own ratio and 95% interval and left
  out of the class's pool. Every other variant of a class reports the pooled ratio and
  interval: one removal among 30 is timed a few times, the class of 30 a hundred;
- *change* = 100 (ratio - 1), negative meaning faster; it is *significant* when its interval
  excludes 0, and a change that is not significant is never shown as a slowdown;
- *latency* = ratio x the median slot time of the unpruned model (ms);
- the *depth fit* is ordinary least squares of latency on kept blocks over all variants,
  ``ms = overhead + per_block x kept``, with a 95% t interval for ``per_block`` and R²;
  a variant *disagrees with the fit* when its ratio interval excludes fit(kept) / fit(all).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

NEIGHBOURS = 3
ITERATIONS = 200
CONVERGED = 1e-12  # in log time
TRIM = 3.0
Z95 = 1.959963984540054


@dataclass(frozen=True)
class Slot:
    """One timed slot: its round, which variant (an id), and its time in seconds."""

    round: int
    variant: str
    seconds: float


@dataclass(frozen=True)
class Change:
    """A variant's time relative to the reference, with its 95% interval."""

    ratio: float
    low: float
    high: float

    @property
    def half_width_pp(self) -> float:
        """Half the interval's width, in percentage points."""
        return 50.0 * (self.high - self.low)

    @property
    def significant(self) -> bool:
        """Whether the interval excludes no change."""
        return excludes((self.low, self.high), 1.0)


def excludes(interval: tuple[float, float], value: float) -> bool:
    """Whether ``value`` lies outside the closed ``interval``: the one test of significance here."""
    return not interval[0] <= value <= interval[1]


@dataclass(frozen=True)
class Estimate:
    """A variant's speed change as reported, and what it rests on (see the module docstring)."""

    change: Change  # reported: its class's pooled change, or its own when it is off its class
    own: Change  # from its own slots alone
    pooled: int  # variants whose slots ``change`` pools (1: its own only)
    off_class: bool  # its own interval (Bonferroni over its class) excludes the class's pooled ratio


@dataclass(frozen=True)
class DepthFit:
    """``ms = overhead_ms + per_block_ms x kept`` by least squares over the variants."""

    overhead_ms: float
    per_block_ms: float
    per_block_ci: tuple[float, float]
    r2: float
    points: int

    def at(self, kept: int) -> float:
        """The fitted latency (ms) with ``kept`` blocks."""
        return self.overhead_ms + self.per_block_ms * kept


def contrasts(slots: Sequence[Slot], reference: str, classes: Mapping[str, str] | None = None) -> list[float]:
    """``d_i`` for every slot, in time order (see the module docstring); with ``classes``
    (variant -> work class) the level's cost ``c`` is estimated per class, from all its slots."""
    log_t = np.log([s.seconds for s in slots])
    names = [s.variant if classes is None or s.variant == reference else classes[s.variant] for s in slots]
    cost = dict.fromkeys(names, 0.0)
    members = {n: np.array([v == n for v in names]) for n in cost}
    level = np.zeros(len(slots))
    for _ in range(ITERATIONS):
        norm = log_t - np.array([cost[n] for n in names])
        level = _neighbour_medians(norm)
        d = log_t - level
        found = {n: float(np.median(d[members[n]])) for n in cost}
        found = {n: c - found[reference] for n, c in found.items()}
        moved = max(abs(found[n] - cost[n]) for n in cost)
        cost = found
        if moved <= CONVERGED:
            break
    return [float(x) for x in log_t - level]


def _neighbour_medians(values: np.ndarray) -> np.ndarray:
    """Each value's median of the ``NEIGHBOURS`` values before and after it (fewer at the ends;
    a lone value is its own)."""
    if values.size < 2:
        return values.copy()
    pad = np.full(NEIGHBOURS, np.nan)
    windows = np.lib.stride_tricks.sliding_window_view(np.r_[pad, values, pad], 2 * NEIGHBOURS + 1)
    return np.asarray(np.nanmedian(np.delete(windows, NEIGHBOURS, axis=1), axis=1))  # (n,)


def shift(sample: Sequence[float], reference: Sequence[float], z: float = Z95) -> tuple[float, float, float]:
    """Hodges-Lehmann shift of ``sample`` against ``reference`` and its Mann-Whitney interval
    (95% with the default ``z``)."""
    diffs = np.sort(np.subtract.outer(np.asarray(sample), np.asarray(reference)).ravel())
    n, m = len(sample), len(reference)
    k = math.floor(n * m / 2.0 - z * math.sqrt(n * m * (n + m + 1) / 12.0))
    k = min(max(k, 0), (diffs.size - 1) // 2)
    return float(np.median(diffs)), float(diffs[k]), float(diffs[diffs.size - 1 - k])


def changes(slots: Sequence[Slot], reference: str) -> dict[str, Change]:
    """Every variant's own ``Change`` against ``reference`` (which gets ratio 1), no pooling."""
    return {name: e.change for name, e in estimates(slots, reference, {}).items()}


def estimates(slots: Sequence[Slot], reference: str, classes: Mapping[str, str]) -> dict[str, Estimate]:
    """Every variant's ``Estimate`` against ``reference``: pooled over its work class
    (``classes``: variant -> class; a variant not in it is a class of its own), or its own
    when it is off its class (see the module docstring)."""
    label = labels((s.variant for s in slots), reference, classes)
    by = _untrimmed(slots, contrasts(slots, reference, label))
    ref = by.pop(reference)
    own = {n: _change(values, ref) for n, values in by.items()}
    members: dict[str, list[str]] = {}
    for n in sorted(by):
        members.setdefault(label[n], []).append(n)
    out = {reference: Estimate(Change(1.0, 1.0, 1.0), Change(1.0, 1.0, 1.0), 1, False)}
    for group in members.values():
        pooled = _change([x for n in group for x in by[n]], ref)
        z = float(stats.norm.ppf(1.0 - 0.025 / len(group)))  # Bonferroni over the class
        wide = {n: _change(by[n], ref, z) for n in group} if len(group) > 1 else {}
        off = {n for n in wide if excludes((wide[n].low, wide[n].high), pooled.ratio)}
        inside = [n for n in group if n not in off]
        if off and len(inside) > 1:  # the pool without the variants that left it
            pooled = _change([x for n in inside for x in by[n]], ref)
        for n in group:
            alone = n in off or len(inside) < 2
            out[n] = Estimate(own[n] if alone else pooled, own[n], 1 if alone else len(inside), n in off)
    return out


def between(slots: Sequence[Slot], reference: str, classes: Mapping[str, str], a: str, b: str) -> Change:
    """Variant ``a``'s time relative to variant ``b``'s, measured directly from the same campaign:
    the shift between their contrasts (the cut applied as in ``estimates``), with its 95%
    interval. Two intervals against the unpruned model separate only when the gap exceeds both
    half-widths; this one interval is narrower than their sum."""
    label = labels((s.variant for s in slots), reference, classes)
    by = _untrimmed(slots, contrasts(slots, reference, label))
    return _change(by[a], by[b])


def labels(names: Iterable[str], reference: str, classes: Mapping[str, str] | None) -> dict[str, str]:
    """Every variant of ``names`` but the reference -> its work class in ``classes`` (a class of
    its own, ``variant:<id>``, when it names none)."""
    given = classes or {}
    return {n: given.get(n, f"variant:{n}") for n in names if n != reference}


def _untrimmed(slots: Sequence[Slot], d: Sequence[float]) -> dict[str, list[float]]:
    """Each variant's contrasts without the slots hit by interference (see the module docstring)."""
    by: dict[str, list[float]] = {}
    for slot, value in zip(slots, d, strict=True):
        by.setdefault(slot.variant, []).append(value)
    centre = {name: float(np.median(values)) for name, values in by.items()}
    residual = np.array([value - centre[slot.variant] for slot, value in zip(slots, d, strict=True)])
    mid = float(np.median(residual))
    cut = max(mid + TRIM * 1.4826 * float(np.median(np.abs(residual - mid))), 0.0)  # keeps each median
    return {name: [v for v in values if v - centre[name] <= cut] for name, values in by.items()}


def _change(sample: Sequence[float], reference: Sequence[float], z: float = Z95) -> Change:
    mid, low, high = shift(sample, reference, z)
    return Change(math.exp(mid), math.exp(low), math.exp(high))


def reference_ms(slots: Sequence[Slot], reference: str) -> float:
    """The median slot time of the reference, in ms."""
    return 1000.0 * float(np.median([s.seconds for s in slots if s.variant == reference]))


def fit_depth(latency_ms: Mapping[str, float], kept: Mapping[str, int]) -> DepthFit | None:
    """Least-squares latency against kept blocks; None with fewer than two distinct depths."""
    names = list(latency_ms)
    x = np.array([kept[n] for n in names], dtype=float)
    y = np.array([latency_ms[n] for n in names], dtype=float)
    if len(set(x.tolist())) < 2:
        return None
    slope, intercept = np.polyfit(x, y, 1)
    residual = y - (intercept + slope * x)
    total = float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - float((residual**2).sum()) / total if total > 0 else 1.0
    dof = len(x) - 2
    if dof > 0:
        se = math.sqrt(float((residual**2).sum()) / dof / float(((x - x.mean()) ** 2).sum()))
        half = float(stats.t.ppf(0.975, dof)) * se
    else:
        half = math.inf
    return DepthFit(float(intercept), float(slope), (slope - half, slope + half), r2, len(x))


def disagrees(interval: tuple[float, float], fit: DepthFit, kept: int, kept_reference: int) -> bool:
    """Whether a ratio interval excludes the ratio the depth fit predicts for ``kept`` blocks."""
    return excludes(interval, fit.at(kept) / fit.at(kept_reference))


def median_half_width(found: Mapping[str, Change], reference: str) -> float:
    """The median half-width (pp) over the variants other than the reference; 0 if none."""
    widths = [c.half_width_pp for name, c in found.items() if name != reference]
    return float(np.median(widths)) if widths else 0.0
