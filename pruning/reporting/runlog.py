"""What a run did besides its rows, as one typed record a summary or report receives.

The study appends to it as it works; reporting reads it and never reaches into the study.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pruning.data.corpora import Corpus
from pruning.engine.stored import StoredResult
from pruning.search.criteria import CriterionResult
from pruning.search.racing import SearchResult


@dataclass(frozen=True)
class Calibration:
    """The calibration text the criteria and beam searches read (never the evaluation text)."""

    corpus: Corpus
    scored_tokens: int


@dataclass
class RunLog:
    """Quality evaluations (with their cost), searches, criteria, and the calibration text used."""

    evaluations: list[StoredResult] = field(default_factory=list)
    searches: list[SearchResult] = field(default_factory=list)
    criteria: list[CriterionResult] = field(default_factory=list)
    calibration: Calibration | None = None

    @property
    def k_max(self) -> int:
        """The largest K any criterion chose a set for (0 without criteria)."""
        return max((max(c.chosen, default=0) for c in self.criteria), default=0)
