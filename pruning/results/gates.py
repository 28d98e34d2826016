"""Direction-aware regression gates on result rows.

Against a saved baseline (comparable runs only: ``pruning.metrics.fingerprint``):
- perplexity may not rise by more than ``ppl_fail_pct`` percent;
- parameter counts may not differ at all;
- the in-run speedup (unpruned prefill time / variant prefill time, from the run's
  interleaved campaign) may not fall by more than ``speedup_fail_pct`` percent, judged on
  intervals: a failure needs the upper end of today's 95% interval to lie below the lower end
  of the baseline's by more than that margin, so noise alone never fails a run while a real
  slowdown does. A ratio, so it carries across machines better than a time does (a baseline
  from another machine is named as such: ``machine_note``).
Absolute budget (no baseline needed):
- no variant's perplexity may exceed the unpruned model's by more than ``max_ppl_increase_pct``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pruning.common.machine import Machine
from pruning.metrics.change import pct_change
from pruning.metrics.fingerprint import RunFingerprint, fingerprint_diff
from pruning.results.rows import Row


@dataclass(frozen=True)
class Thresholds:
    """Gate thresholds in percent; None switches a gate off."""

    ppl_fail_pct: float = 1.0
    speedup_fail_pct: float | None = 10.0
    max_ppl_increase_pct: float | None = None
    acc_fail_pts: float | None = None  # task accuracy may not fall more than this below the baseline's
    max_acc_drop_pts: float | None = None  # nor more than this below the unpruned model's (paired change)


@dataclass(frozen=True)
class GateFailure:
    """One failed gate: which variant, which metric, the numbers and the threshold."""

    variant: str
    metric: str
    baseline: float
    now: float
    threshold: str

    def __str__(self) -> str:
        return (
            f"{self.variant}: {self.metric} {self.now:.6g} vs baseline {self.baseline:.6g} "
            f"(threshold: {self.threshold})"
        )


def check_baseline(now: Sequence[Row], baseline: Sequence[Row], t: Thresholds) -> list[GateFailure]:
    """Gate failures of ``now`` against ``baseline``, matched by variant id."""
    saved = {r.id: r for r in baseline}
    failures: list[GateFailure] = []
    for row in now:
        old = saved.get(row.id)
        if old is None:
            continue
        rise = pct_change(row.ppl, old.ppl)
        if rise > t.ppl_fail_pct:
            failures.append(GateFailure(row.id, "perplexity", old.ppl, row.ppl, f"+{t.ppl_fail_pct}%"))
        if row.params != old.params:
            failures.append(GateFailure(row.id, "parameters", old.params, row.params, "any change"))
        failures += _speedup(row, old, t)
        failures += _accuracy(row, old, t)
    return failures


def _accuracy(row: Row, old: Row, t: Thresholds) -> list[GateFailure]:
    """Tasks both rows measured alike (same limit, few-shot setting and lm-eval version: the same
    examples and prompts) whose accuracy fell more than ``acc_fail_pts`` points. Tasks set up
    otherwise are not compared; ``tasks_note`` names them."""
    if t.acc_fail_pts is None:
        return []
    now, then = row.tasks or {}, old.tasks or {}
    alike = {name for name in set(now) & set(then) if now[name].get("setup") == then[name].get("setup")}
    return [
        GateFailure(
            row.id,
            f"{name} {now[name]['metric']} (%)",
            then[name]["value"],
            now[name]["value"],
            f"-{t.acc_fail_pts} pts",
        )
        for name in sorted(alike)
        if then[name]["value"] - now[name]["value"] > t.acc_fail_pts
    ]


def check_budget(now: Sequence[Row], t: Thresholds) -> list[GateFailure]:
    """Variants whose perplexity exceeds the unpruned model's by more than the budget."""
    if t.max_ppl_increase_pct is None:
        return []
    base = next((r for r in now if r.id == "base"), None)
    if base is None:
        return []
    return [
        GateFailure(r.id, "perplexity vs unpruned", base.ppl, r.ppl, f"+{t.max_ppl_increase_pct}%")
        for r in now
        if pct_change(r.ppl, base.ppl) > t.max_ppl_increase_pct
    ]


def check_task_budget(now: Sequence[Row], t: Thresholds) -> list[GateFailure]:
    """Variants whose task accuracy lies more than ``max_acc_drop_pts`` points below the unpruned
    model's on the same examples (the paired change)."""
    if t.max_acc_drop_pts is None:
        return []
    failures = []
    for r in now:
        for name, cell in sorted((r.tasks or {}).items()):
            change = cell.get("change_pts")
            if change is not None and -change > t.max_acc_drop_pts:
                base = cell["value"] - change
                metric = f"{name} {cell['metric']} vs unpruned (%)"
                failures.append(GateFailure(r.id, metric, base, cell["value"], f"-{t.max_acc_drop_pts} pts"))
    return failures


def tasks_note(now: Sequence[Row], saved: Sequence[Row]) -> str:
    """How the baseline's task results were set up differently (other tasks, limit, few-shot,
    lm-eval version), said without refusing it ("" when they match or neither has tasks)."""
    mine = {(n, c.get("setup", "")) for r in now for n, c in (r.tasks or {}).items()}
    theirs = {(n, c.get("setup", "")) for r in saved for n, c in (r.tasks or {}).items()}
    if mine == theirs:
        return ""
    return (
        f"the baseline's tasks differ: baseline {_setups(theirs)}; this run {_setups(mine)} "
        "(the accuracy gate compares only tasks set up alike)"
    )


def _setups(pairs: set[tuple[str, str]]) -> str:
    return "; ".join(f"{name} ({setup or 'setup unknown'})" for name, setup in sorted(pairs)) or "none"


def _speedup(row: Row, old: Row, t: Thresholds) -> list[GateFailure]:
    if t.speedup_fail_pct is None or row.speedup is None or old.speedup is None:
        return []
    now_high = row.speedup if row.speedup_ci95 is None else row.speedup_ci95[1]
    old_low = old.speedup if old.speedup_ci95 is None else old.speedup_ci95[0]
    if now_high < old_low * (1.0 - t.speedup_fail_pct / 100.0):
        threshold = (
            f"-{t.speedup_fail_pct}% between intervals: now up to {now_high:.4f}, baseline from {old_low:.4f}"
        )
        return [GateFailure(row.id, "speedup vs unpruned", old.speedup, row.speedup, threshold)]
    return []


@dataclass(frozen=True)
class Verdict:
    """The gates' outcome: the baseline used (or why none), a refusal, and every failure."""

    thresholds: Thresholds
    baseline_note: str  # which baseline the gates compared against, or why none
    baseline: list[Row]  # empty: none compared
    refused: list[str]  # fingerprint differences: the baseline was not comparable
    failures: list[GateFailure]
    machine: str = ""  # how the baseline's machine differs from this run's ("" when it does not)
    scoring: str = ""  # how the baseline's scoring differs from this run's ("" when it does not)
    tasks: str = ""  # how the baseline's task setup differs from this run's ("" when it does not)

    @property
    def failed(self) -> bool:
        return bool(self.failures or self.refused)

    @property
    def notes(self) -> list[str]:
        """How the baseline differs without being refused: machine, scoring, task setup."""
        return [n for n in (self.machine, self.scoring, self.tasks) if n]

    @property
    def compared(self) -> bool:
        """Whether a comparable baseline was compared."""
        return bool(self.baseline) and not self.refused


def judge(
    rows: Sequence[Row],
    t: Thresholds,
    fingerprint: RunFingerprint,
    baseline: tuple[Mapping[str, object], list[Row]] | None,
    baseline_note: str,
) -> Verdict:
    """Run the budget and, for a comparable ``baseline`` (its fingerprint and rows), the baseline gates."""
    failures = check_budget(rows, t) + check_task_budget(rows, t)
    if baseline is None or not baseline[1]:
        return Verdict(t, baseline_note, [], [], failures)
    refused = fingerprint_diff(fingerprint, baseline[0])
    if not refused:
        failures += check_baseline(rows, baseline[1], t)
    machine = machine_note(fingerprint, baseline[0])
    scoring = scoring_note(fingerprint, baseline[0])
    tasks = tasks_note(rows, baseline[1])
    return Verdict(t, baseline_note, baseline[1], refused, failures, machine, scoring, tasks)


def machine_note(now: RunFingerprint, saved: Mapping[str, object]) -> str:
    """Whether the baseline was measured on another machine (``pruning.common.machine``), said
    without refusing it: speedups are ratios, and quality differs in the last digits only."""
    try:
        fields = (saved["cpu"], saved["cores"], saved["threads"], saved["kernels"])
        then = Machine(str(fields[0]), int(str(fields[1])), int(str(fields[2])), str(fields[3]))
    except (KeyError, ValueError):
        return "the baseline does not record its machine (saved before runs recorded it)"
    if then.hardware == now.machine.hardware:  # torch's threads are a setting of the run, not the machine
        return ""
    here = now.machine.describe()
    return f"the baseline was measured on another machine ({then.describe()}; this run: {here})"


def scoring_note(now: RunFingerprint, saved: Mapping[str, object]) -> str:
    """Whether the baseline's sums were computed another way (``pruning.metrics.scoring``), said
    without refusing it: the earlier whole-row ``log_softmax`` put perplexities under 2e-5
    relative lower, far inside any gate's threshold, but a reader comparing digits should know."""
    then = saved.get("scoring")
    if then == now.scoring:
        return ""
    if then is None:
        return (
            "the baseline does not record its scoring (saved by pruning-kit before 0.6.0, whose "
            "whole-row float32 log_softmax put perplexities up to 2e-5 relative lower; "
            f"this run: {now.scoring})"
        )
    return f"the baseline was scored differently ({then}; this run: {now.scoring})"


def speed_gate_state(verdict: Verdict, rows: Sequence[Row]) -> str:
    """Whether the speedup gate compared anything, and if not, why (it never skips silently)."""
    if verdict.thresholds.speedup_fail_pct is None:
        return "off"
    saved = {r.id for r in verdict.baseline if r.speedup is not None}
    now = {r.id for r in rows if r.speedup is not None}
    if not now:
        return "did NOT run: this run has no prefill timings (deselected, or -n / --benchmark-disable)"
    if not saved & now:
        return "did NOT run: the baseline has no prefill timings for these variants"
    return f"ran on {len(saved & now)} variants"
