"""What a run did besides its rows, as one typed record a summary or report receives.

The study appends to it as it works; reporting reads it and never reaches into the study.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pruning.data.corpora import Corpus
from pruning.engine.stored import StoredResult
from pruning.healing.methods import HealRecord
from pruning.search.criteria import CriterionResult
from pruning.search.racing import SearchResult
from pruning.tasks.shared import TaskCost


@dataclass(frozen=True)
class Calibration:
    """The calibration text the criteria and beam searches read (never the evaluation text)."""

    corpus: Corpus
    scored_tokens: int


@dataclass(frozen=True)
class WorkerCost:
    """What one pytest-xdist worker evaluated and what it cost (block-forward equivalents per window)."""

    worker: str
    variants: int  # the variants of its groups
    cost: float  # what its engine passes counted
    naive: float  # the same variants by full passes
    serial: float  # every selected variant in one prefix-shared pass: the serial run's cost
    peak_rss_mb: float
    computed: int = 0  # (variant, window) results it computed
    reused: int = 0  # ... and took from the results store
    task_cost: float = 0.0  # its tasks' shared passes (block-forward equivalents, all request batches)
    task_naive: float = 0.0  # ... and one lm-eval run per variant of them

    def as_dict(self) -> dict[str, float | int | str]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass
class RunLog:
    """Quality evaluations (with their cost), searches, criteria, healings, and the calibration
    text used."""

    evaluations: list[StoredResult] = field(default_factory=list)
    searches: list[SearchResult] = field(default_factory=list)
    criteria: list[CriterionResult] = field(default_factory=list)
    calibration: Calibration | None = None
    healings: list[HealRecord] = field(default_factory=list)
    task_costs: list[TaskCost] = field(default_factory=list)  # the tasks' shared passes

    @property
    def k_max(self) -> int:
        """The largest K any criterion chose a set for (0 without criteria)."""
        return max((max(c.chosen, default=0) for c in self.criteria), default=0)
