"""The interleaved timing campaign: every variant timed in every round, in a fresh random order.

On a shared machine the time a pass takes drifts by tens of percent over seconds, so timing
variant after variant (minutes apart) compares machine states, not variants. Here:
- a *round* times every variant once and the reference (the unpruned model) ``ceil(V / sqrt(K))``
  times (V variants in K work classes), in a random order drawn afresh each round (seeded:
  rerunnable). The reference gets more slots because every comparison uses it, and a class's
  pooled comparison uses the class's V/K slots a round: Dunnett's square-root allocation over
  the K pooled comparisons (``ceil(sqrt(V))`` when every variant is a class of its own);
- a *slot* runs its variant's ``measure`` (for prefill: ``burst`` back-to-back passes; for
  decode: one cached decode run) and keeps the fastest time it reports;
- rounds go on until the median 95% half-width of the reported speed changes
  (``pruning.metrics.latency.estimates``: pooled over work classes) is at most ``target_pp``
  or the next round would overrun ``budget_s``, but at least ``min_rounds`` and at most
  ``max_rounds``. The analysis is ``pruning.metrics.latency``;
- a variant the analysis then finds *off its work class* (slower or faster than variants doing
  the same work) is re-timed before it is reported so: ``CONFIRM_ROUNDS`` more rounds of the
  flagged variants, each with ``CONFIRM_REFERENCE`` reference slots, and the analysis is redone
  on all slots. Interference that happened to hit a variant's few slots (3 to 7 in a default
  run: a fresh clone once showed one removal 15% slower in decode, from three slots each 10-20%
  slower than their neighbours, with no sign of it when timed again by hand) does not survive
  this; a variant that really is slower keeps being slower.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from pruning.metrics.latency import Change, Estimate, Slot, estimates, labels, median_half_width, reference_ms

CONFIRM_ROUNDS = 6  # re-timing rounds of the variants flagged off their class
CONFIRM_REFERENCE = 2  # reference slots per flagged variant in each of them

Measure = Callable[[], float]  # times one slot; returns its time in seconds
OnProgress = Callable[["CampaignProgress"], None]


@dataclass(frozen=True)
class CampaignSettings:
    """When a campaign stops, and how slots are drawn."""

    min_rounds: int = 3
    max_rounds: int = 50
    budget_s: float = 90.0
    target_pp: float = 1.5
    seed: int = 0


@dataclass(frozen=True)
class CampaignProgress:
    """Where a running campaign stands after a round."""

    name: str
    rounds: int  # finished rounds
    slot: int  # slots finished in the current round
    slots_per_round: int
    elapsed_s: float
    budget_s: float
    half_width_pp: float  # after the last finished round
    target_pp: float
    done: bool = False


@dataclass(frozen=True)
class Campaign:
    """A finished campaign: its slots in time order, the estimates, and why it stopped."""

    name: str
    reference: str
    slots: tuple[Slot, ...]
    estimates: dict[str, Estimate]
    rounds: int
    elapsed_s: float
    stopped: str  # "target" | "budget" | "max_rounds"
    classes: dict[str, str]  # variant -> work class ({}: every variant a class of its own)
    retimed: tuple[str, ...] = ()  # variants flagged off their class after the rounds, re-timed

    @property
    def changes(self) -> dict[str, Change]:
        """Every variant's reported change (pooled over its class unless it is off it)."""
        return {name: e.change for name, e in self.estimates.items()}

    @property
    def half_width_pp(self) -> float:
        """The median 95% half-width of the changes, in percentage points."""
        return median_half_width(self.changes, self.reference)

    def latency_ms(self, variant: str) -> float:
        """The variant's latency: its ratio x the reference's median slot time (ms)."""
        return self.changes[variant].ratio * reference_ms(self.slots, self.reference)


def round_order(
    names: Sequence[str], reference: str, index: int, seed: int, classes: Mapping[str, str] | None = None
) -> list[str]:
    """The slots of round ``index``: every name once, ``reference`` ``reference_slots`` times,
    shuffled; ``classes`` (variant -> work class) as for ``pruning.metrics.latency.estimates``."""
    others = [n for n in names if n != reference]
    kinds = len(set(labels(others, reference, classes).values()))
    slots = [*others, *[reference] * reference_slots(len(others), kinds)]
    random.Random(f"{seed}:{index}").shuffle(slots)
    return slots


def reference_slots(variants: int, classes: int | None = None) -> int:
    """How many times a round times the reference when it compares ``variants`` variants in
    ``classes`` work classes (default: each its own): ``ceil(variants / sqrt(classes))``."""
    k = variants if classes is None else classes
    return max(1, math.ceil(variants / math.sqrt(max(k, 1))))


def stop(settings: CampaignSettings, rounds: int, width: float, elapsed: float, last: float) -> str:
    """Why a campaign stops after ``rounds`` rounds (``target`` or ``budget``), or ``""`` to go on:
    ``width`` is the median half-width (pp), ``last`` the last round's seconds."""
    if rounds < settings.min_rounds:
        return ""
    if width <= settings.target_pp:
        return "target"
    return "budget" if elapsed + last > settings.budget_s else ""


def run_campaign(
    name: str,
    measures: Mapping[str, Measure],
    reference: str,
    settings: CampaignSettings,
    on_progress: OnProgress | None = None,
    clock: Callable[[], float] = time.perf_counter,
    classes: Mapping[str, str] | None = None,
) -> Campaign:
    """Time ``measures`` (variant id -> slot timer) in interleaved rounds, pooling each work class
    (``classes``: variant -> class; default each its own); see the module docstring."""
    pools = dict(classes or {})
    if reference not in measures:
        raise ValueError(f"the reference {reference!r} has no measure; expected one of {sorted(measures)}")
    start, slots, width = clock(), list[Slot](), math.inf
    found: dict[str, Estimate] = {}
    rounds, stopped = 0, "max_rounds"

    def report(slot: int, per_round: int, done: bool = False) -> None:
        if on_progress is not None:
            state = (name, rounds, slot, per_round, clock() - start, settings.budget_s, width)
            on_progress(CampaignProgress(*state, settings.target_pp, done))

    while rounds < settings.max_rounds:
        round_start = clock()
        order = round_order(list(measures), reference, rounds, settings.seed, pools)
        slots += timed(order, rounds, measures, report)
        rounds += 1
        found = estimates(slots, reference, pools)
        width = median_half_width({n: e.change for n, e in found.items()}, reference)
        why = stop(settings, rounds, width, clock() - start, clock() - round_start)
        if why:
            stopped = why
            break
    retimed = tuple(sorted(n for n, e in found.items() if e.off_class))
    if retimed:  # re-timed before they are reported off their class
        slots += retime(retimed, measures, reference, rounds, settings.seed, report)
        found = estimates(slots, reference, pools)
    report(0, 0, done=True)
    return Campaign(name, reference, tuple(slots), found, rounds, clock() - start, stopped, pools, retimed)


def retime(
    flagged: Sequence[str],
    measures: Mapping[str, Measure],
    reference: str,
    rounds: int,
    seed: int,
    report: Callable[[int, int], None],
) -> list[Slot]:
    """``CONFIRM_ROUNDS`` re-timing rounds of the ``flagged`` variants after ``rounds`` rounds."""
    slots = []
    for extra in range(rounds, rounds + CONFIRM_ROUNDS):
        slots += timed(confirm_order(flagged, reference, extra, seed), extra, measures, report)
    return slots


def timed(
    order: Sequence[str], index: int, measures: Mapping[str, Measure], report: Callable[[int, int], None]
) -> list[Slot]:
    """Round ``index``: one slot per entry of ``order``, timed in that order."""
    slots = []
    for i, variant in enumerate(order):
        slots.append(Slot(index, variant, measures[variant]()))
        report(i + 1, len(order))
    return slots


def confirm_order(flagged: Sequence[str], reference: str, index: int, seed: int) -> list[str]:
    """The slots of re-timing round ``index``: each flagged variant once and the reference
    ``CONFIRM_REFERENCE`` times as often, shuffled, so a flagged slot's neighbours, which tell the
    machine's level, are mostly the reference's."""
    slots = [*flagged, *[reference] * (CONFIRM_REFERENCE * len(flagged))]
    random.Random(f"{seed}:confirm:{index}").shuffle(slots)
    return slots
