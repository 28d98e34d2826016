"""The percent change, defined once: every table, gate, plot and assessment uses it."""

from __future__ import annotations


def pct_change(value: float, reference: float) -> float:
    """100 (value / reference - 1): negative when ``value`` is below ``reference``."""
    return 100.0 * (value / reference - 1.0)
