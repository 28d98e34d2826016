"""Direction-aware regression gates on result rows.

Against a saved baseline (same fingerprint only):
- perplexity may not rise by more than ``ppl_fail_pct`` percent;
- parameter counts may not differ at all;
- the in-run speedup (unpruned prefill ms / variant prefill ms) may not fall by more than
  ``speedup_fail_pct`` percent of the baseline's; a ratio, so it holds across machines.
Absolute budget (no baseline needed):
- no variant's perplexity may exceed the unpruned model's by more than ``max_ppl_increase_pct``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pruning.results import Row

# Keys whose difference makes a baseline incomparable for the quality gates.
FINGERPRINT_KEYS = (
    "model",
    "weights_sha256",
    "dtype",
    "corpus",
    "corpus_sha256",
    "protocol",
    "ctx",
    "eval_tokens",
)


@dataclass(frozen=True)
class Thresholds:
    """Gate thresholds in percent; None switches a gate off."""

    ppl_fail_pct: float = 1.0
    speedup_fail_pct: float | None = 25.0
    max_ppl_increase_pct: float | None = None


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


def fingerprint_diff(now: Mapping[str, object], saved: Mapping[str, object]) -> list[str]:
    """Human-readable differences on ``FINGERPRINT_KEYS`` (empty when comparable)."""
    return [
        f"{key}: baseline {saved.get(key)!r}, now {now.get(key)!r}"
        for key in FINGERPRINT_KEYS
        if saved.get(key) != now.get(key)
    ]


def check_baseline(now: Sequence[Row], baseline: Sequence[Row], t: Thresholds) -> list[GateFailure]:
    """Gate failures of ``now`` against ``baseline``, matched by variant id."""
    saved = {r.id: r for r in baseline}
    failures: list[GateFailure] = []
    for row in now:
        old = saved.get(row.id)
        if old is None:
            continue
        rise = 100.0 * (row.ppl / old.ppl - 1.0)
        if rise > t.ppl_fail_pct:
            failures.append(GateFailure(row.id, "perplexity", old.ppl, row.ppl, f"+{t.ppl_fail_pct}%"))
        if row.params != old.params:
            failures.append(GateFailure(row.id, "parameters", old.params, row.params, "any change"))
        failures += _speedup(row, old, t)
    return failures


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
        if 100.0 * (r.ppl / base.ppl - 1.0) > t.max_ppl_increase_pct
    ]


def _speedup(row: Row, old: Row, t: Thresholds) -> list[GateFailure]:
    if t.speedup_fail_pct is None or row.speedup is None or old.speedup is None:
        return []
    drop = 100.0 * (1.0 - row.speedup / old.speedup)
    if drop > t.speedup_fail_pct:
        return [
            GateFailure(row.id, "speedup vs unpruned", old.speedup, row.speedup, f"-{t.speedup_fail_pct}%")
        ]
    return []
