"""Per-example task results and what the tables show of them.

For a task, lm-eval's primary metric is ``acc_norm`` where the task reports it, else ``acc``;
per example it is 0 or 1. Definitions, in points (percent of examples):

- ``value`` = 100 · mean over the n examples, with ``ci95`` = value ± t₀.₉₇₅(n−1) · 100 · s/√n
  (s: the examples' sample standard deviation), clipped to 0-100;
- ``change_pts`` = value − the unpruned model's value on the same examples, with the **paired**
  ``change_ci95`` = change ± t₀.₉₇₅(n−1) · 100 · s_d/√n, s_d the standard deviation of the
  per-example differences. Both models answer the same examples, so most of the examples'
  difficulty cancels: two independent standard errors would be far wider.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class TaskScores:
    """One model's per-example results on one task."""

    task: str
    metric: str  # acc or acc_norm
    doc_ids: tuple[int, ...]
    values: tuple[float, ...]  # per example, in doc_ids order
    setup: str = ""  # limit, few-shot setting and lm-eval version: what makes two results comparable

    def as_dict(self) -> dict[str, Any]:
        """Plain dict for JSON (rows, the store)."""
        return {
            "task": self.task,
            "metric": self.metric,
            "doc_ids": list(self.doc_ids),
            "values": list(self.values),
            "setup": self.setup,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TaskScores:
        """Inverse of ``as_dict``."""
        values = tuple(float(v) for v in data["values"])
        return cls(data["task"], data["metric"], tuple(data["doc_ids"]), values, str(data.get("setup", "")))


def mean_ci(
    values: Sequence[float], low: float = -100.0, high: float = 100.0
) -> tuple[float, tuple[float, float]]:
    """The mean in points and its t interval, clipped to ``[low, high]`` (an accuracy lies in
    0-100, a change in -100-100; a single example: the interval is the value)."""
    x = 100.0 * np.asarray(values, dtype=np.float64)
    mean = float(x.mean())
    if x.size < 2:
        return mean, (mean, mean)
    half = float(stats.t.ppf(0.975, x.size - 1)) * float(x.std(ddof=1)) / math.sqrt(x.size)
    return mean, (max(mean - half, low), min(mean + half, high))


def task_cell(scores: TaskScores, base: TaskScores | None) -> dict[str, Any]:
    """What a row carries for one task: ``{metric, value, ci95, n, setup, change_pts, change_ci95}``."""
    value, ci = mean_ci(scores.values, 0.0, 100.0)
    cell: dict[str, Any] = {
        "metric": scores.metric,
        "value": value,
        "ci95": list(ci),
        "n": len(scores.values),
        "setup": scores.setup,
    }
    cell["change_pts"] = cell["change_ci95"] = None
    if base is not None and base.doc_ids == scores.doc_ids and base.metric == scores.metric:
        diff = [a - b for a, b in zip(scores.values, base.values, strict=True)]
        change, change_ci = mean_ci(diff)
        cell["change_pts"], cell["change_ci95"] = change, list(change_ci)
    return cell
