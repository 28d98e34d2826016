"""How good is a criterion? Its scores and choices checked against measured truth.

- truth: the single-removal perplexity increase on the *evaluation* text, per unit of the
  criterion's space (blocks, or branches: ``pruning.models.variant.UNIT_SPACES``);
- spearman / kendall: rank correlation between a criterion's per-unit scores and that truth
  (None for criteria without per-block scores: ``last``, ``sleb``);
- regret@K = 100 * (ppl of the criterion's K-set / ppl of the oracle's K-set - 1), both
  measured on the evaluation text; the oracle is the best measured K-set: exhaustive for K=1
  (every single removal), else the best of the oracle's search (``pruning.search.oracle``)
  and every criterion's set. So
  regret is >= 0, exact for K<=2, and a lower bound on the true regret for K>=3.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from scipy.stats import kendalltau, spearmanr

from pruning.metrics.change import pct_change
from pruning.models.variant import Variant
from pruning.search.criteria import CriterionResult


@dataclass(frozen=True)
class Assessment:
    """One row of the criteria table."""

    criterion: str
    spearman: float | None
    kendall: float | None
    regret: dict[int, float]  # K -> percent
    chosen: dict[int, Variant]
    seconds: float
    scores: tuple[float, ...] | None = None  # the criterion's per-unit scores


def assess(
    result: CriterionResult,
    truth: Sequence[float],
    measured: Mapping[Variant, float],
    oracle: Mapping[int, float],
) -> Assessment:
    """Assess ``result`` against per-unit ``truth`` and measured perplexities of removal sets."""
    rho = tau = None
    if result.scores is not None:
        rho = float(spearmanr(result.scores, truth).statistic)
        tau = float(kendalltau(result.scores, truth).statistic)
    regret = {
        k: pct_change(measured[chosen], oracle[k])
        for k, chosen in result.chosen.items()
        if chosen in measured and k in oracle
    }
    return Assessment(result.name, rho, tau, regret, dict(result.chosen), result.seconds, result.scores)
